//! Connects a `Session` to the serial port: feeds it what the port reads, writes what it
//! sends, changes the port's speed when it says so, and logs what it reports.

use super::session::{Action, ReceiverState, Session};
use crate::config::ReceiverConfig;
use crate::refclock::gps::nmea::Frame;
use crate::refclock::gps::serial::PortHandle;
use crate::refclock::gps::ubx::FrameReader;

pub struct Link {
    name: String,
    session: Session,
    port: Option<PortHandle>,
    frames: FrameReader,
    /// The port's speed when it opened, until the first bytes start detection: a port that
    /// stays silent (reopened every few seconds) is not asked anything, nor logged about.
    opened: Option<u32>,
}

impl Link {
    pub fn new(name: &str, config: Option<ReceiverConfig>) -> Self {
        Link {
            name: name.to_string(),
            session: Session::new(config),
            port: None,
            frames: FrameReader::default(),
            opened: None,
        }
    }

    pub fn state(&self) -> &ReceiverState {
        &self.session.state
    }

    /// The port opened at `baud`; `port` writes to it.
    pub fn connected(&mut self, port: Option<PortHandle>, baud: u32) {
        self.port = port;
        self.frames = FrameReader::default();
        self.opened = Some(baud);
    }

    pub fn disconnected(&mut self) {
        self.port = None;
        self.opened = None;
        self.session.disconnected();
    }

    /// Bytes read: the UBX frames among them.
    pub fn bytes(&mut self, bytes: &[u8], now: f64) {
        if let Some(baud) = self.opened.take() {
            self.session.connected(baud, now);
        }
        let mut frames = Vec::new();
        self.frames.push(bytes, |f| frames.push(f));
        for f in frames {
            self.session.heard(now);
            let actions = self.session.ubx(&f, now);
            self.act(actions);
        }
    }

    /// A line from the NMEA reader: its answers, if its checksum is good.
    pub fn line(&mut self, line: &[u8], now: f64) {
        if Frame::parse(line).is_ok() {
            self.session.heard(now);
            let actions = self.session.sentence(line, now);
            self.act(actions);
        }
    }

    /// Runs what is due; call at least every half second.
    pub fn poll(&mut self, now: f64) {
        let actions = self.session.poll(now);
        self.act(actions);
    }

    fn act(&mut self, actions: Vec<Action>) {
        let name = &self.name;
        for a in actions {
            match a {
                Action::Send(bytes) => {
                    if let Some(Err(e)) = self.port.as_ref().map(|p| p.write(&bytes)) {
                        tracing::warn!(source = %name, "cannot write to the receiver: {e}");
                    }
                }
                Action::SetBaud(baud) => {
                    if let Some(Err(e)) = self.port.as_ref().map(|p| p.set_baud(baud)) {
                        tracing::warn!(source = %name, baud, "cannot set the port's speed: {e}");
                    }
                }
                Action::Info(text) => tracing::info!(source = %name, "{text}"),
                Action::Warn(text) => tracing::warn!(source = %name, "{text}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::refclock::gps::nmea::sentence;
    use crate::refclock::gps::receiver::Identity;
    use crate::refclock::gps::ubx::{frame, mon_ver};

    /// A MON-VER answer behind binary noise and a header whose length lies (1000 bytes that
    /// never come as a frame): found once a second of sentences has flushed the lie out.
    #[test]
    fn an_answer_behind_garbage_and_a_lying_length_is_still_found() {
        let mut link = Link::new("gps", None);
        link.connected(None, 9600);
        let mut stream: Vec<u8> = (0..500u32).map(|i| (i * 7919 % 251) as u8).collect();
        stream.extend([0xb5, 0x62, 0x0a, 0x04, 0xe8, 0x03]);
        stream.extend(frame(
            0x0a,
            0x04,
            &mon_ver(&["PROTVER=18.00", "MOD=NEO-M8N"]),
        ));
        link.bytes(&stream, 0.0);
        assert_eq!(link.state().identity, Identity::Unknown);
        let rmc = sentence("GPRMC,085001.00,A,4807.038,N,01131.000,E,0.0,0.0,190726,,,A");
        for i in 0..20 {
            link.bytes(rmc.as_bytes(), 0.1 + f64::from(i) * 0.05);
        }
        match &link.state().identity {
            Identity::Ublox(v) => assert_eq!(v.model, "NEO-M8N"),
            other => panic!("{other:?}"),
        }
    }
}
