//! The NTS-KE server's answer to one request (RFC 8915 section 4), pure: the records in, the
//! algorithm agreed or the refusal out; the caller exports the keys and makes the cookies.

use crate::ntp::nts::aead::Algorithm;
use crate::ntp::nts::record::{self, Record};
use crate::ntp::nts::PROTOCOL_NTPV4;

/// Cookies given in each answer, as RFC 8915 recommends.
pub const COOKIES: usize = 8;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Negotiation {
    /// NTPv4 with this algorithm: answer with keys and cookies.
    Agreed(Algorithm),
    /// The answer (a complete message) and why it is a refusal.
    Refused(Vec<u8>, Refusal),
}

/// Why a request was refused; names are stable metric label values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Refusal {
    UnknownCritical,
    BadRequest,
    NoProtocol,
    NoAlgorithm,
}

impl Refusal {
    pub fn name(self) -> &'static str {
        match self {
            Refusal::UnknownCritical => "unrecognized_critical",
            Refusal::BadRequest => "bad_request",
            Refusal::NoProtocol => "no_common_protocol",
            Refusal::NoAlgorithm => "no_common_algorithm",
        }
    }
}

/// What to send to clients besides the keys: another server and port, if configured.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Referral {
    pub server: Option<String>,
    pub port: Option<u16>,
}

fn error(code: u16, why: Refusal) -> Negotiation {
    let mut m = Vec::new();
    record::push_u16s(&mut m, true, record::ERROR, &[code]);
    record::push_end(&mut m);
    Negotiation::Refused(m, why)
}

/// Decides on a client's request: the first protocol and algorithm of its lists that pitime
/// speaks (the client's order is its preference).
pub fn negotiate(records: &[Record]) -> Negotiation {
    let (mut protocols, mut algorithms) = (None, None);
    for r in records {
        match r.kind {
            record::NEXT_PROTOCOL if protocols.is_none() => {
                let Some(list) = record::u16s(r.body) else {
                    return error(record::ERROR_BAD_REQUEST, Refusal::BadRequest);
                };
                protocols = Some(list.collect::<Vec<_>>());
            }
            record::AEAD_ALGORITHM if algorithms.is_none() => {
                let Some(list) = record::u16s(r.body) else {
                    return error(record::ERROR_BAD_REQUEST, Refusal::BadRequest);
                };
                algorithms = Some(list.filter_map(Algorithm::from_id).next());
            }
            // Twice the same negotiation, or what only a server sends.
            record::NEXT_PROTOCOL
            | record::AEAD_ALGORITHM
            | record::ERROR
            | record::WARNING
            | record::NEW_COOKIE => {
                return error(record::ERROR_BAD_REQUEST, Refusal::BadRequest);
            }
            // A client's wishes for server and port are only wishes.
            record::NTPV4_SERVER | record::NTPV4_PORT => {}
            _ if r.critical => {
                return error(
                    record::ERROR_UNRECOGNIZED_CRITICAL,
                    Refusal::UnknownCritical,
                )
            }
            _ => {}
        }
    }
    let Some(protocols) = protocols else {
        return error(record::ERROR_BAD_REQUEST, Refusal::BadRequest);
    };
    let mut m = Vec::new();
    if !protocols.contains(&PROTOCOL_NTPV4) {
        record::push(&mut m, true, record::NEXT_PROTOCOL, &[]);
        record::push_end(&mut m);
        return Negotiation::Refused(m, Refusal::NoProtocol);
    }
    match algorithms {
        None => error(record::ERROR_BAD_REQUEST, Refusal::BadRequest),
        Some(Some(algorithm)) => Negotiation::Agreed(algorithm),
        Some(None) => {
            record::push_u16s(&mut m, true, record::NEXT_PROTOCOL, &[PROTOCOL_NTPV4]);
            record::push(&mut m, true, record::AEAD_ALGORITHM, &[]);
            record::push_end(&mut m);
            Negotiation::Refused(m, Refusal::NoAlgorithm)
        }
    }
}

/// The answer to an agreed request: protocol, algorithm, the referral, the cookies.
pub fn answer(algorithm: Algorithm, referral: &Referral, cookies: &[Vec<u8>]) -> Vec<u8> {
    let mut m = Vec::new();
    record::push_u16s(&mut m, true, record::NEXT_PROTOCOL, &[PROTOCOL_NTPV4]);
    record::push_u16s(&mut m, true, record::AEAD_ALGORITHM, &[algorithm.id()]);
    if let Some(server) = &referral.server {
        record::push(&mut m, false, record::NTPV4_SERVER, server.as_bytes());
    }
    if let Some(port) = referral.port {
        record::push_u16s(&mut m, false, record::NTPV4_PORT, &[port]);
    }
    for c in cookies {
        record::push(&mut m, false, record::NEW_COOKIE, c);
    }
    record::push_end(&mut m);
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ntp::nts::record::parse_message;

    fn request(records: &[(bool, u16, &[u16])]) -> Vec<u8> {
        let mut m = Vec::new();
        for (critical, kind, values) in records {
            record::push_u16s(&mut m, *critical, *kind, values);
        }
        record::push_end(&mut m);
        m
    }

    fn decide(records: &[(bool, u16, &[u16])]) -> Negotiation {
        let m = request(records);
        negotiate(&parse_message(&m).unwrap().unwrap())
    }

    fn refusal(n: Negotiation) -> (Vec<(u16, Vec<u8>)>, Refusal) {
        let Negotiation::Refused(m, why) = n else {
            panic!("agreed")
        };
        let records = parse_message(&m).unwrap().unwrap();
        (
            records.iter().map(|r| (r.kind, r.body.to_vec())).collect(),
            why,
        )
    }

    const NP: u16 = record::NEXT_PROTOCOL;
    const AEAD: u16 = record::AEAD_ALGORITHM;

    #[test]
    fn the_clients_first_known_algorithm_is_agreed() {
        assert_eq!(
            decide(&[(true, NP, &[0]), (true, AEAD, &[99, 30, 15])]),
            Negotiation::Agreed(Algorithm::Aes128GcmSiv)
        );
        // Non-critical unknown records and a client's server wishes are ignored.
        assert_eq!(
            decide(&[
                (true, NP, &[5, 0]),
                (false, 0x4000, &[1]),
                (false, record::NTPV4_PORT, &[123]),
                (false, AEAD, &[15]),
            ]),
            Negotiation::Agreed(Algorithm::AesSivCmac256)
        );
    }

    #[test]
    fn requests_that_cannot_be_agreed_get_the_rfcs_answers() {
        let bad = vec![(record::ERROR, vec![0, 1])];
        assert_eq!(
            refusal(decide(&[(true, AEAD, &[15])])),
            (bad.clone(), Refusal::BadRequest)
        );
        assert_eq!(
            refusal(decide(&[(true, NP, &[0])])),
            (bad.clone(), Refusal::BadRequest)
        );
        assert_eq!(
            refusal(decide(&[
                (true, NP, &[0]),
                (true, NP, &[0]),
                (true, AEAD, &[15])
            ])),
            (bad.clone(), Refusal::BadRequest)
        );
        assert_eq!(
            refusal(decide(&[
                (true, NP, &[0]),
                (true, record::NEW_COOKIE, &[1]),
                (true, AEAD, &[15])
            ])),
            (bad, Refusal::BadRequest)
        );
        assert_eq!(
            refusal(decide(&[
                (true, NP, &[0]),
                (true, 0x1234, &[]),
                (true, AEAD, &[15])
            ])),
            (vec![(record::ERROR, vec![0, 0])], Refusal::UnknownCritical)
        );
        assert_eq!(
            refusal(decide(&[(true, NP, &[7]), (true, AEAD, &[15])])),
            (vec![(NP, vec![])], Refusal::NoProtocol)
        );
        assert_eq!(
            refusal(decide(&[(true, NP, &[0]), (true, AEAD, &[1, 2])])),
            (vec![(NP, vec![0, 0]), (AEAD, vec![])], Refusal::NoAlgorithm)
        );
        let mut odd = Vec::new();
        record::push(&mut odd, true, NP, &[0]);
        record::push_end(&mut odd);
        assert_eq!(
            refusal(negotiate(&parse_message(&odd).unwrap().unwrap())).1,
            Refusal::BadRequest
        );
    }

    #[test]
    fn answers_carry_referral_and_cookies() {
        let referral = Referral {
            server: Some("ntp.example".into()),
            port: Some(11123),
        };
        let m = answer(
            Algorithm::AesSivCmac256,
            &referral,
            &[vec![1; 8], vec![2; 8]],
        );
        let records = parse_message(&m).unwrap().unwrap();
        let kinds: Vec<(bool, u16)> = records.iter().map(|r| (r.critical, r.kind)).collect();
        assert_eq!(
            kinds,
            [
                (true, NP),
                (true, AEAD),
                (false, record::NTPV4_SERVER),
                (false, record::NTPV4_PORT),
                (false, record::NEW_COOKIE),
                (false, record::NEW_COOKIE)
            ]
        );
        assert_eq!(records[1].body, [0, 15]);
        assert_eq!(records[2].body, b"ntp.example");
        assert_eq!(records[3].body, 11123u16.to_be_bytes());
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use crate::ntp::nts::record::parse_message;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]
        #[test]
        fn any_request_gets_an_agreement_or_a_complete_refusal(
            records in proptest::collection::vec(
                (any::<bool>(), 1u16..10, proptest::collection::vec(any::<u8>(), 0..12)),
                0..8,
            ),
            tail in proptest::collection::vec(any::<u8>(), 0..6),
        ) {
            let mut m = Vec::new();
            for (critical, kind, body) in &records {
                record::push(&mut m, *critical, *kind, body);
            }
            record::push_end(&mut m);
            m.extend_from_slice(&tail);
            let Ok(Some(parsed)) = parse_message(&m) else {
                // Only bytes after the end make a message unreadable.
                prop_assert!(!tail.is_empty());
                return Ok(());
            };
            match negotiate(&parsed) {
                Negotiation::Agreed(a) => prop_assert!(Algorithm::ALL.contains(&a)),
                Negotiation::Refused(answer, _) => {
                    prop_assert!(matches!(parse_message(&answer), Ok(Some(_))));
                }
            }
        }
    }
}
