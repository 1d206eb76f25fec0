//! What the NTP server and the upstream client share: the packet codec (RFC 5905 header,
//! RFC 7822 extension fields and MAC), the control message (mode 6) codec, symmetric-key MACs
//! and keys files, and the batched UDP sockets with kernel timestamps.

pub mod control;
pub mod hwstamp;
pub mod keys;
pub mod mac;
pub mod nts;
pub mod packet;
pub mod phc;
pub mod phc_fit;
pub mod txstamp;
pub mod udp;
