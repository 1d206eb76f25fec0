//! u-blox UBX binary frames: finding them in a byte stream, checking them, and reading the few
//! messages that say what the receiver is and whether it has a fix. Pure; only syntax.

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

/// Cuts frames out of a byte stream that may mix them with NMEA text and noise.
#[derive(Debug, Default)]
pub struct FrameReader {
    buf: Vec<u8>,
    /// Candidates (a sync and a plausible length) whose checksum failed.
    pub bad: u64,
}

impl FrameReader {
    /// Feeds bytes; calls `frame` for each good frame.
    pub fn push(&mut self, bytes: &[u8], mut frame: impl FnMut(UbxFrame)) {
        self.buf.extend_from_slice(bytes);
        let mut start = 0;
        loop {
            let Some(at) = self.buf[start..].windows(2).position(|w| w == SYNC) else {
                // Keep a last byte that may be the first half of a sync.
                start = self.buf.len().saturating_sub(1).max(start);
                break;
            };
            start += at;
            let rest = &self.buf[start..];
            if rest.len() < HEADER {
                break;
            }
            let len = usize::from(u16::from_le_bytes([rest[4], rest[5]]));
            if len > MAX_PAYLOAD {
                start += 1;
                continue;
            }
            if rest.len() < HEADER + len + CHECKSUM {
                break;
            }
            let body = &rest[2..HEADER + len];
            if checksum(body) != rest[HEADER + len..HEADER + len + CHECKSUM] {
                self.bad += 1;
                start += 1;
                continue;
            }
            frame(UbxFrame {
                class: rest[2],
                id: rest[3],
                payload: rest[HEADER..HEADER + len].to_vec(),
            });
            start += HEADER + len + CHECKSUM;
        }
        self.buf.drain(..start);
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
            (0x01, 0x21) => "TIMEUTC",
            (0x01, 0x35) => "SAT",
            (0x0a, 0x04) => "VER",
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
