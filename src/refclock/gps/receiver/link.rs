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
