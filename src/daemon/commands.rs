//! The operator's command socket: `pitime accept-jump SOURCE` reaches the running daemon
//! through a Unix socket in its runtime directory (/run/pitime, mode 0750, owned by the
//! pitime user). Only root and the daemon's own user may use it: the socket is mode 0600 and
//! every connection's peer credentials are checked, so the log can also say who asked.
//! One request line in, one answer line out.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Sender};
use std::time::Duration;

use anyhow::Context;

use super::Event;
use crate::worker::Workers;

/// Where `pitime run` listens and the commands connect, unless told otherwise.
pub const DEFAULT_SOCKET: &str = "/run/pitime/pitime.sock";
/// How long a client may take to send its request, and the daemon to answer it.
const TIMEOUT: Duration = Duration::from_secs(5);
/// The longest request read.
const MAX_REQUEST: u64 = 256;

/// What the operator asks of the daemon.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// Follow the pending jump of this source.
    AcceptJump(String),
}

impl Request {
    fn parse(line: &str) -> Result<Request, String> {
        match line.trim_end().split_once(' ') {
            Some(("accept-jump", source)) if !source.is_empty() => {
                Ok(Request::AcceptJump(source.to_string()))
            }
            _ => Err("unknown request: expected `accept-jump SOURCE`".into()),
        }
    }

    fn line(&self) -> String {
        match self {
            Request::AcceptJump(source) => format!("accept-jump {source}\n"),
        }
    }
}

/// Who sent a request: the peer's credentials, as the kernel tells them.
#[derive(Clone, Copy, Debug)]
pub struct Peer {
    pub uid: u32,
    pub pid: i32,
}

/// A request for the daemon's loop, with where its answer goes.
pub(super) struct Command {
    pub(super) request: Request,
    pub(super) peer: Peer,
    pub(super) reply: Sender<Result<String, String>>,
}

/// The listening socket; removed when dropped (after its thread has stopped).
pub(super) struct CommandSocket {
    path: PathBuf,
    workers: Workers,
}

impl CommandSocket {
    /// Listens at `path`, handing each request to the daemon's loop through `events`. A live
    /// socket of another daemon there is left alone (an error); a stale one is replaced.
    pub(super) fn start(path: &Path, events: Sender<Event>) -> anyhow::Result<CommandSocket> {
        if UnixStream::connect(path).is_ok() {
            anyhow::bail!("another pitime answers on {}", path.display());
        }
        let _ = std::fs::remove_file(path);
        let listener =
            UnixListener::bind(path).with_context(|| format!("binding {}", path.display()))?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("restricting {}", path.display()))?;
        let mut workers = Workers::default();
        workers.spawn("commands", move |stop| serve(&listener, &events, stop))?;
        tracing::info!(path = %path.display(), "listening for commands");
        Ok(CommandSocket {
            path: path.to_path_buf(),
            workers,
        })
    }
}

impl Drop for CommandSocket {
    fn drop(&mut self) {
        std::mem::take(&mut self.workers);
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Answers connections one at a time until `stop` is set.
fn serve(listener: &UnixListener, events: &Sender<Event>, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        if !readable(listener, 500) {
            continue;
        }
        let Ok((stream, _)) = listener.accept() else {
            continue;
        };
        let answer = answer(&stream, events);
        let line = match answer {
            Ok(text) => format!("ok: {text}\n"),
            Err(why) => format!("error: {why}\n"),
        };
        let _ = (&stream).write_all(line.as_bytes());
    }
}

/// Whether the listener has a connection waiting, within `ms` milliseconds.
fn readable(listener: &UnixListener, ms: i32) -> bool {
    let mut fd = libc::pollfd {
        fd: listener.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, for the duration of the call.
    unsafe { libc::poll(&mut fd, 1, ms) == 1 }
}

/// Reads one request, checks who sent it, and has the daemon's loop answer it.
fn answer(stream: &UnixStream, events: &Sender<Event>) -> Result<String, String> {
    let peer = peer(stream).map_err(|e| format!("cannot tell who is asking: {e}"))?;
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    if peer.uid != 0 && peer.uid != me {
        tracing::warn!(
            uid = peer.uid,
            pid = peer.pid,
            "command refused: not root or pitime"
        );
        return Err("only root or the daemon's user may send commands".into());
    }
    let _ = stream.set_read_timeout(Some(TIMEOUT));
    let mut line = String::new();
    BufReader::new(stream.take(MAX_REQUEST))
        .read_line(&mut line)
        .map_err(|e| format!("reading the request: {e}"))?;
    let request = Request::parse(&line)?;
    let (reply, answer) = mpsc::channel();
    let command = Command {
        request,
        peer,
        reply,
    };
    events
        .send(Event::Command(command))
        .map_err(|_| "the daemon is stopping".to_string())?;
    answer
        .recv_timeout(TIMEOUT)
        .map_err(|_| "the daemon did not answer".to_string())?
}

/// The connected process's credentials (SO_PEERCRED).
fn peer(stream: &UnixStream) -> std::io::Result<Peer> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: `cred` and `len` are valid for writes of the sizes given.
    let rc = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(Peer {
        uid: cred.uid,
        pid: cred.pid,
    })
}

/// Sends `request` to the daemon listening at `socket`; its answer, or why there is none.
pub fn send(socket: &Path, request: &Request) -> anyhow::Result<Result<String, String>> {
    let mut stream = UnixStream::connect(socket).with_context(|| {
        format!(
            "connecting to {} (is pitime running, and are you root or the pitime user?)",
            socket.display()
        )
    })?;
    stream.set_read_timeout(Some(2 * TIMEOUT))?;
    stream.write_all(request.line().as_bytes())?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    let answer = answer.trim_end();
    Ok(match answer.split_once(": ") {
        Some(("ok", text)) => Ok(text.to_string()),
        Some(("error", why)) => Err(why.to_string()),
        _ => Err(format!("unexpected answer: {answer:?}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_one_line_and_anything_else_is_refused() {
        let r = Request::AcceptJump("gps".into());
        assert_eq!(Request::parse(&r.line()), Ok(r));
        for bad in [
            "",
            "accept-jump",
            "accept-jump \n",
            "step 1\n",
            "\u{0}\u{ff}",
        ] {
            assert!(Request::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_socket_answers_through_the_loop_and_goes_away_when_dropped() {
        let dir = std::env::temp_dir().join(format!("pitime-commands-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("pitime.sock");
        let (events, received) = mpsc::channel();
        let socket = CommandSocket::start(&path, events.clone()).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        // A second daemon does not take over a live socket.
        assert!(CommandSocket::start(&path, events).is_err());
        let loop_ = std::thread::spawn(move || {
            let Ok(Event::Command(c)) = received.recv() else {
                panic!("no command");
            };
            assert_eq!(c.request, Request::AcceptJump("gps".into()));
            assert_eq!(c.peer.pid, std::process::id() as i32);
            c.reply
                .send(Err("`gps` has no pending jump".into()))
                .unwrap();
        });
        let answer = send(&path, &Request::AcceptJump("gps".into())).unwrap();
        assert_eq!(answer, Err("`gps` has no pending jump".into()));
        loop_.join().unwrap();
        drop(socket);
        assert!(!path.exists());
        let _ = std::fs::remove_dir(&dir);
    }
}
