//! u-blox UBX binary frames: finding them in a byte stream that mixes them with NMEA, checking
//! them, and reading the few messages that say what the receiver is and whether it has a fix.
//! Pure; only syntax (`ubx_nav` reads the time).

use super::nmea::LineReader;

/// Longest payload kept. MON-VER, the longest message read here, is 40 + 30 bytes per
/// extension; a longer length field is noise (or a message nobody here reads).
const MAX_PAYLOAD: usize = 1024;
const SYNC: [u8; 2] = [0xb5, 0x62];
/// Sync, class, id and length before the payload; the checksum after it.
const HEADER: usize = 6;
const CHECKSUM: usize = 2;

/// A frame whose checksum is good.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UbxFrame {
    pub class: u8,
    pub id: u8,
    pub payload: Vec<u8>,
}

/// The 8-bit Fletcher checksum over class, id, length and payload.
pub fn checksum(bytes: &[u8]) -> [u8; 2] {
    let (mut a, mut b) = (0u8, 0u8);
    for &x in bytes {
        a = a.wrapping_add(x);
        b = b.wrapping_add(a);
    }
    [a, b]
}

/// A frame as a receiver sends it.
pub fn frame(class: u8, id: u8, payload: &[u8]) -> Vec<u8> {
    let len = u16::try_from(payload.len())
        .unwrap_or(u16::MAX)
        .to_le_bytes();
    let mut out = SYNC.to_vec();
    out.extend([class, id, len[0], len[1]]);
    out.extend(payload);
    let sum = checksum(&out[2..]);
    out.extend(sum);
    out
}

/// What a byte stream holds, in order: text between frames (NMEA sentences, noise) or a
/// frame, each with the time of the read that delivered its first byte.
#[derive(Debug, PartialEq, Eq)]
pub enum Piece<'a, T> {
    Text(&'a [u8], T),
    Frame(UbxFrame, T),
}

/// Cuts frames out of a byte stream that may mix them with NMEA text and noise, and hands
/// the text between them on, so that the NMEA around a frame is never lost.
#[derive(Debug)]
pub struct FrameReader<T = ()> {
    buf: Vec<u8>,
    /// (offset in `buf`, time) of each read whose bytes are still in `buf`.
    reads: Vec<(usize, T)>,
    /// Candidates (a sync and a plausible length) whose checksum failed.
    pub bad: u64,
}

impl<T> Default for FrameReader<T> {
    fn default() -> Self {
        FrameReader {
            buf: Vec::new(),
            reads: Vec::new(),
            bad: 0,
        }
    }
}

impl FrameReader<()> {
    /// Feeds bytes; calls `frame` for each good frame.
    pub fn push(&mut self, bytes: &[u8], mut frame: impl FnMut(UbxFrame)) {
        self.push_at(bytes, (), |piece| {
            if let Piece::Frame(f, ()) = piece {
                frame(f)
            }
        });
    }
}

impl<T: Copy> FrameReader<T> {
    /// Feeds bytes read at `at`; calls `piece` for each stretch of text and each good frame.
    /// Text is held back only behind a sync that may yet turn out a frame (NMEA never
    /// contains the sync's 0xB5 byte).
    pub fn push_at(&mut self, bytes: &[u8], at: T, mut piece: impl FnMut(Piece<T>)) {
        self.reads.push((self.buf.len(), at));
        self.buf.extend_from_slice(bytes);
        // `done`: bytes before it are handed out; `scan`: where to look for the next sync.
        let (mut done, mut scan) = (0, 0);
        loop {
            let Some(found) = self.buf[scan..].windows(2).position(|w| w == SYNC) else {
                // Keep a last byte that may be the first half of a sync.
                let end = match self.buf.last() {
                    Some(&b) if b == SYNC[0] => self.buf.len() - 1,
                    _ => self.buf.len(),
                }
                .max(done);
                self.text(done, end, &mut piece);
                done = end;
                break;
            };
            let start = scan + found;
            let rest = &self.buf[start..];
            if rest.len() < HEADER {
                self.text(done, start, &mut piece);
                done = start;
                break;
            }
            let len = usize::from(u16::from_le_bytes([rest[4], rest[5]]));
            if len > MAX_PAYLOAD {
                scan = start + 1;
                continue;
            }
            if rest.len() < HEADER + len + CHECKSUM {
                self.text(done, start, &mut piece);
                done = start;
                break;
            }
            let body = &rest[2..HEADER + len];
            if checksum(body) != rest[HEADER + len..HEADER + len + CHECKSUM] {
                self.bad += 1;
                scan = start + 1;
                continue;
            }
            let frame = UbxFrame {
                class: rest[2],
                id: rest[3],
                payload: rest[HEADER..HEADER + len].to_vec(),
            };
            self.text(done, start, &mut piece);
            piece(Piece::Frame(frame, self.time_of(start)));
            done = start + HEADER + len + CHECKSUM;
            scan = done;
        }
        self.buf.drain(..done);
        // Keep the read that delivered the first byte kept, and those after it.
        let first = self.reads.iter().rposition(|r| r.0 <= done).unwrap_or(0);
        self.reads.drain(..first);
        for r in &mut self.reads {
            r.0 = r.0.saturating_sub(done);
        }
    }

    /// The time of the read that delivered byte `at` of the buffer.
    fn time_of(&self, at: usize) -> T {
        let i = self.reads.iter().rposition(|r| r.0 <= at).unwrap_or(0);
        self.reads[i].1
    }

    /// Hands out `buf[from..to]`, split where reads begin.
    fn text(&self, from: usize, to: usize, piece: &mut impl FnMut(Piece<T>)) {
        let mut at = from;
        while at < to {
            let next = self
                .reads
                .iter()
                .map(|r| r.0)
                .find(|&o| o > at)
                .unwrap_or(to)
                .min(to);
            piece(Piece::Text(&self.buf[at..next], self.time_of(at)));
            at = next;
        }
    }
}

/// One thing a receiver sent: an NMEA candidate line (from `$`, unchecked) or a UBX frame.
#[derive(Debug)]
pub enum Message<'a> {
    Line(&'a [u8]),
    Frame(UbxFrame),
}

/// Splits a receiver's byte stream into NMEA lines and UBX frames, each with the time of the
/// read that delivered its first byte.
#[derive(Debug)]
pub struct ReceiverStream<T> {
    pub lines: LineReader<T>,
    pub frames: FrameReader<T>,
}

impl<T: Copy> Default for ReceiverStream<T> {
    fn default() -> Self {
        ReceiverStream {
            lines: LineReader::default(),
            frames: FrameReader::default(),
        }
    }
}

impl<T: Copy> ReceiverStream<T> {
    pub fn push(&mut self, bytes: &[u8], at: T, mut message: impl FnMut(Message, T)) {
        let lines = &mut self.lines;
        self.frames.push_at(bytes, at, |piece| match piece {
            Piece::Text(text, at) => {
                lines.push(text, at, |l, start| message(Message::Line(l), start))
            }
            Piece::Frame(frame, at) => message(Message::Frame(frame), at),
        });
    }

    /// Forgets a partial line or frame (after a disconnect, its rest never comes).
    pub fn reset(&mut self) {
        self.lines.reset();
        self.frames.buf.clear();
        self.frames.reads.clear();
    }
}

impl UbxFrame {
    /// `NAV-PVT`, `MON-VER`, ... or the class and id in hex.
    pub fn name(&self) -> String {
        let class = match self.class {
            0x01 => "NAV",
            0x02 => "RXM",
            0x04 => "INF",
            0x05 => "ACK",
            0x06 => "CFG",
            0x0a => "MON",
            0x0d => "TIM",
            _ => return format!("{:02X}-{:02X}", self.class, self.id),
        };
        let id = match (self.class, self.id) {
            (0x01, 0x03) => "STATUS",
            (0x01, 0x07) => "PVT",
            (0x01, 0x20) => "TIMEGPS",
            (0x01, 0x21) => "TIMEUTC",
            (0x01, 0x26) => "TIMELS",
            (0x01, 0x35) => "SAT",
            (0x0a, 0x04) => "VER",
            (0x0a, 0x38) => "RF",
            (0x0d, 0x01) => "TP",
            _ => return format!("{class}-{:02X}", self.id),
        };
        format!("{class}-{id}")
    }

    /// Whether a NAV-PVT or NAV-STATUS message reports a valid fix (its gnssFixOK flag).
    pub fn fix(&self) -> Option<bool> {
        let flags = match (self.class, self.id) {
            (0x01, 0x07) => self.payload.get(21)?,
            (0x01, 0x03) => self.payload.get(5)?,
            _ => return None,
        };
        Some(flags & 1 == 1)
    }

    /// From a MON-VER message: the module (its `MOD=` extension, else the hardware version)
    /// and the software version.
    pub fn version(&self) -> Option<(String, String)> {
        if (self.class, self.id) != (0x0a, 0x04) || self.payload.len() < 40 {
            return None;
        }
        let text = |b: &[u8]| {
            String::from_utf8_lossy(b.split(|&c| c == 0).next().unwrap_or_default())
                .trim()
                .to_string()
        };
        let software = text(&self.payload[..30]);
        let module = self.payload[40..]
            .chunks(30)
            .map(text)
            .find_map(|e| e.strip_prefix("MOD=").map(str::to_string))
            .unwrap_or_else(|| format!("hardware {}", text(&self.payload[30..40])));
        Some((module, software))
    }
}

/// A MON-VER payload: software, hardware, then 30-byte extensions.
#[cfg(test)]
pub(crate) fn mon_ver(extensions: &[&str]) -> Vec<u8> {
    let field = |s: &str, n: usize| {
        let mut v = s.as_bytes().to_vec();
        v.resize(n, 0);
        v
    };
    let mut p = field("ROM CORE 3.01 (107888)", 30);
    p.extend(field("00080000", 10));
    for e in extensions {
        p.extend(field(e, 30));
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(chunks: &[&[u8]]) -> (Vec<UbxFrame>, u64) {
        let mut r = FrameReader::default();
        let mut frames = Vec::new();
        for c in chunks {
            r.push(c, |f| frames.push(f));
        }
        (frames, r.bad)
    }

    #[test]
    fn frames_are_found_among_text_and_noise_and_split_reads() {
        let pvt = {
            let mut p = vec![0u8; 92];
            p[20] = 3;
            p[21] = 1;
            frame(0x01, 0x07, &p)
        };
        let ver = frame(0x0a, 0x04, &mon_ver(&["FWVER=SPG 3.01", "MOD=NEO-M8N"]));
        let mut stream = b"$GPRMC,junk*00\r\n\xb5\xb5".to_vec();
        stream.extend(&pvt);
        stream.extend(b"\x00\xb5");
        stream.extend(&ver);
        let (mid, end) = stream.split_at(50);
        let (frames, bad) = read(&[&stream[..7], &mid[7..], end]);
        assert_eq!(bad, 0);
        let names: Vec<String> = frames.iter().map(UbxFrame::name).collect();
        assert_eq!(names, ["NAV-PVT", "MON-VER"]);
        assert_eq!(frames[0].fix(), Some(true));
        assert_eq!(
            frames[1].version(),
            Some(("NEO-M8N".to_string(), "ROM CORE 3.01 (107888)".to_string()))
        );
    }

    #[test]
    fn a_bad_checksum_or_length_is_dropped_and_the_stream_resyncs() {
        let mut bad = frame(0x01, 0x03, &[0, 0, 0, 0, 3, 0, 0, 0]);
        let n = bad.len();
        bad[n - 1] ^= 0xff;
        let good = frame(0x01, 0x03, &[0, 0, 0, 0, 3, 0, 0, 0]);
        let huge = [0xb5, 0x62, 1, 7, 0xff, 0xff];
        let (frames, errors) = read(&[&bad, &huge, &good]);
        assert_eq!(errors, 1);
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].fix(), Some(false));
        assert_eq!(frames[0].version(), None);
    }

    #[test]
    fn the_text_around_frames_is_handed_on_with_the_time_of_its_read() {
        let status = frame(0x01, 0x03, &[0, 0, 0, 0, 3, 1, 0, 0]);
        let mut stream = b"$GPZDA,1*00\r\n".to_vec();
        stream.extend(&status);
        stream.extend(b"$GPRMC,2*00\r\n");
        // A sync that turns out no frame is text too.
        stream.extend(b"\xb5\x62\x01\x03\x08\x00junkjunkXX$GPGGA*00\r\n");
        let split = 20;
        let mut r = FrameReader::default();
        let (mut text, mut frames) = (Vec::new(), Vec::new());
        for (at, chunk) in [(1, &stream[..split]), (2, &stream[split..])] {
            r.push_at(chunk, at, |p| match p {
                Piece::Text(t, at) => text.push((t.to_vec(), at)),
                Piece::Frame(f, at) => frames.push((f.name(), at)),
            });
        }
        assert_eq!(frames, [("NAV-STATUS".to_string(), 1)]);
        assert_eq!(r.bad, 1);
        let all: Vec<u8> = text.iter().flat_map(|t| t.0.clone()).collect();
        let mut want = stream.clone();
        want.drain(13..13 + status.len());
        assert_eq!(all, want);
        // The text before the frame came with the first read; the rest with the second.
        assert_eq!(text[0], (b"$GPZDA,1*00\r\n".to_vec(), 1));
        assert!(text[1..].iter().all(|t| t.1 == 2));
    }

    #[test]
    fn a_receiver_stream_gives_lines_and_frames_in_order() {
        let mut stream = b"$GPZDA,1*00\r\n".to_vec();
        stream.extend(frame(0x01, 0x21, &[0; 20]));
        stream.extend(b"$GPRMC,2*00\r\n");
        let mut s = ReceiverStream::default();
        let mut got = Vec::new();
        s.push(&stream, 7, |m, at| {
            got.push(match m {
                Message::Line(l) => String::from_utf8_lossy(l).to_string(),
                Message::Frame(f) => f.name(),
            });
            assert_eq!(at, 7);
        });
        assert_eq!(got, ["$GPZDA,1*00", "NAV-TIMEUTC", "$GPRMC,2*00"]);
    }

    #[test]
    fn a_lying_length_holds_the_sentences_back_but_loses_none_nor_their_times() {
        // A sync and a 1000-byte length in garbage: the sentences after it wait until a
        // thousand bytes have come to show the checksum fails, then come out with the times
        // of the reads that brought them.
        let mut s = ReceiverStream::default();
        let mut got = Vec::new();
        s.push(b"\xb5\x62\x01\x07\xe8\x03", 0, |_, _| panic!("nothing yet"));
        for t in 1..=100 {
            let line = format!("$GPZDA,{t}*00\r\n");
            s.push(line.as_bytes(), t, |m, at| {
                if let Message::Line(l) = m {
                    got.push((String::from_utf8_lossy(l).to_string(), at));
                }
            });
        }
        assert_eq!(got.len(), 100);
        assert!(got.iter().all(|(l, t)| *l == format!("$GPZDA,{t}*00")));
        assert_eq!(s.frames.bad, 1);
    }

    #[test]
    fn noise_never_grows_the_buffer() {
        let mut r = FrameReader::default();
        let noise: Vec<u8> = (0..100_000u32).map(|i| (i * 7919 % 251) as u8).collect();
        r.push(&noise, |_| {});
        assert!(r.buf.len() <= HEADER + MAX_PAYLOAD + CHECKSUM);
    }

    #[test]
    fn a_module_without_mod_is_named_by_its_hardware() {
        let f = UbxFrame {
            class: 0x0a,
            id: 0x04,
            payload: mon_ver(&[]),
        };
        assert_eq!(f.version().unwrap().0, "hardware 00080000");
        assert_eq!(f.name(), "MON-VER");
        assert_eq!(
            UbxFrame {
                class: 0x42,
                id: 1,
                payload: vec![]
            }
            .name(),
            "42-01"
        );
    }
}
