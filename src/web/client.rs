//! `pitime status` and `pitime sources`: ask the running daemon's JSON API and print what
//! `chronyc tracking` and `chronyc sources` would.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use serde_json::Value;

use super::svg::scaled;
use crate::discipline::Standing;
use crate::refclock::longwave::station::StationKind;

/// The address to ask for a listen address: a wildcard means this machine.
pub fn local_address(listen: SocketAddr) -> SocketAddr {
    let mut addr = listen;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            SocketAddr::V4(_) => [127, 0, 0, 1].into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    addr
}

/// GETs `path` over HTTP/1.1 and returns the body of a 200 answer.
pub fn get(addr: SocketAddr, path: &str) -> Result<String, String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(3))
        .map_err(|e| format!("cannot reach pitime at {addr}: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    // A daemon that refuses this address closes the connection at once: say so, not "broken
    // pipe".
    let refused = |e: String| {
        format!(
            "pitime at {addr} closed the connection without answering ({e}): \
             is this address refused by `web.allow` or `web.deny`?"
        )
    };
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| refused(e.to_string()))?;
    let mut answer = Vec::new();
    stream
        .take(16 * 1024 * 1024)
        .read_to_end(&mut answer)
        .map_err(|e| refused(e.to_string()))?;
    let answer = String::from_utf8_lossy(&answer);
    let (head, body) = answer
        .split_once("\r\n\r\n")
        .ok_or_else(|| refused("no answer".to_string()))?;
    if !head.starts_with("HTTP/1.1 200") {
        return Err(format!(
            "the daemon answered: {}",
            head.lines().next().unwrap_or("")
        ));
    }
    Ok(body.to_string())
}

pub fn status(addr: SocketAddr) -> Result<Value, String> {
    serde_json::from_str(&get(addr, "/api/v1/status")?).map_err(|e| e.to_string())
}

fn seconds(v: &Value) -> String {
    v.as_f64().map_or("-".into(), |x| scaled(x, "s"))
}

/// Like `chronyc tracking`.
pub fn tracking(s: &Value) -> String {
    let c = &s["clock"];
    let yes = |b: &Value| {
        if b.as_bool() == Some(true) {
            "yes"
        } else {
            "no"
        }
    };
    let lines = [
        (
            "Reference ID",
            c["refid"].as_str().unwrap_or("").to_string(),
        ),
        ("Stratum", c["stratum"].to_string()),
        ("Synchronised", yes(&c["synchronised"]).to_string()),
        (
            "Ref time (UTC)",
            c["reference_time"].as_str().unwrap_or("-").to_string(),
        ),
        (
            "Offset",
            format!(
                "{} (served minus system clock)",
                seconds(&c["offset_seconds"])
            ),
        ),
        (
            "Frequency",
            format!("{:.3} ppm", c["frequency_ppm"].as_f64().unwrap_or(0.0)),
        ),
        ("Root delay", seconds(&c["root_delay_seconds"])),
        ("Root dispersion", seconds(&c["root_dispersion_seconds"])),
        ("Leap status", c["leap"].as_str().unwrap_or("").to_string()),
        (
            "Uptime",
            format!("{:.0} s", s["uptime_seconds"].as_f64().unwrap_or(0.0)),
        ),
        ("Version", s["version"].as_str().unwrap_or("").to_string()),
    ];
    let mut out: String = lines
        .iter()
        .map(|(k, v)| format!("{k:<16}: {v}\n"))
        .collect();
    let nts = &s["nts"];
    if nts.is_object() {
        let listen: Vec<&str> = nts["ke_listen"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        out.push_str(&format!(
            "{:<16}: KE on {}, {} sessions, certificate expires {}\n",
            "NTS",
            if listen.is_empty() {
                "nothing".to_string()
            } else {
                listen.join(" ")
            },
            nts["ke_sessions"].as_u64().unwrap_or(0),
            nts["certificate_expires"].as_str().unwrap_or("unknown"),
        ));
    }
    for g in s["gps"].as_array().into_iter().flatten() {
        out.push_str(&receiver_line(g));
    }
    for d in s["longwave"].as_array().into_iter().flatten() {
        out.push_str(&longwave_line(d));
    }
    for a in s["alarms"].as_array().into_iter().flatten() {
        out.push_str(&format!("Alarm           : {}\n", a.as_str().unwrap_or("")));
    }
    out
}

/// A GPS source's receiver and how its settings went, for `pitime status`.
fn receiver_line(g: &Value) -> String {
    let settings = g["settings"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let count = |state: &str| settings.iter().filter(|x| x["state"] == state).count();
    let mut line = format!(
        "{:<16}: {} ({})",
        "Receiver",
        g["receiver"].as_str().unwrap_or("-"),
        g["name"].as_str().unwrap_or("")
    );
    if !settings.is_empty() {
        line.push_str(&format!(
            ", {} settings applied, {} failed",
            count("applied"),
            count("failed")
        ));
    }
    for failed in settings.iter().filter(|x| x["state"] == "failed") {
        line.push_str(&format!(
            "\n{:<16}: {}: {}",
            "Setting failed",
            failed["name"].as_str().unwrap_or(""),
            failed["reason"].as_str().unwrap_or("")
        ));
    }
    if let Some(sv) = g["survey"].as_object() {
        line.push_str(&format!(
            "\n{:<16}: {} s, {:.2} m, {}",
            "Survey-in",
            sv["seconds"],
            sv["accuracy_metres"].as_f64().unwrap_or(0.0),
            if sv["valid"] == true {
                "done"
            } else {
                "in progress"
            }
        ));
    }
    line + "\n"
}

/// A longwave source under its station's name (`MSF`), its lock and its minutes, for
/// `pitime status`.
fn longwave_line(d: &Value) -> String {
    let station = d["station"].as_str().unwrap_or("");
    let label = StationKind::from_name(station).map_or(station, |k| k.label());
    format!(
        "{label:<16}: {}, {}, {} minutes accepted, last {}\n",
        d["name"].as_str().unwrap_or(""),
        if d["locked"] == true {
            "locked"
        } else {
            "searching"
        },
        d["minutes_accepted"].as_u64().unwrap_or(0),
        d["last_minute"].as_str().unwrap_or("none"),
    )
}

/// Like `chronyc sources`: `*` selected, `+` candidate, `?` unreachable.
pub fn sources(s: &Value) -> String {
    let mut out = format!(
        "{:<2} {:<16} {:<6} {:<5} {:>5} {:>8} {:>14} {:>12}\n",
        "", "Name", "Kind", "Refid", "Reach", "LastRx", "Offset", "Jitter"
    );
    for r in s["sources"].as_array().into_iter().flatten() {
        let mark =
            serde_json::from_value::<Standing>(r["state"].clone()).map_or("?", Standing::mark);
        let last = r["last_sample_ago"]
            .as_f64()
            .map_or("-".into(), |a| format!("{a:.1}s"));
        out.push_str(&format!(
            "{mark:<2} {:<16} {:<6} {:<5} {:>5o} {:>8} {:>14} {:>12}\n",
            r["name"].as_str().unwrap_or(""),
            r["kind"].as_str().unwrap_or(""),
            r["refid"].as_str().unwrap_or("-"),
            r["reach"].as_u64().unwrap_or(0),
            last,
            seconds(&r["offset"]),
            seconds(&r["jitter"]),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_names_a_longwave_source_by_its_station() {
        let status = serde_json::json!({
            "longwave": [{
                "name": "anthorn",
                "station": "msf",
                "locked": true,
                "minutes_accepted": 4,
                "last_minute": "2026-12-03 04:10:00 UTC",
            }],
        });
        let text = tracking(&status);
        assert!(
            text.contains(
                "MSF             : anthorn, locked, 4 minutes accepted, last 2026-12-03 04:10:00 UTC\n"
            ),
            "{text}"
        );
    }
}
