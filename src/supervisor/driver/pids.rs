//! Agents' deaths as events: a thread waits on a pidfd of each agent's pane process (Linux
//! 5.3+), which becomes readable the moment the process ends, whether tmux notices or not
//! (an unreaped zombie, a killed pane or window, a killed server). Where pidfds are not
//! available the thread looks at each process once a second instead.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossbeam_channel::Sender;

use super::Wake;

/// How often processes are looked at without pidfds.
const FALLBACK_POLL: Duration = Duration::from_secs(1);

pub struct PidWatch {
    add: Arc<Mutex<Vec<(String, u32)>>>,
    /// Pids the thread watches (or was just told of), so the same pane listed again costs
    /// nothing; the thread drops a pid when its process ends.
    known: Arc<Mutex<BTreeSet<u32>>>,
    /// Writing a byte here wakes the thread to pick up new pids.
    wake_fd: Option<std::os::fd::OwnedFd>,
}

impl PidWatch {
    pub fn start(tx: Sender<Wake>) -> PidWatch {
        let add: Arc<Mutex<Vec<(String, u32)>>> = Arc::default();
        let known: Arc<Mutex<BTreeSet<u32>>> = Arc::default();
        let (read, write) = match pipe() {
            Some(p) => p,
            None => {
                return PidWatch {
                    add,
                    known,
                    wake_fd: None,
                };
            }
        };
        let shared = Arc::clone(&add);
        let ended = Arc::clone(&known);
        let spawned = std::thread::Builder::new()
            .name("pids".into())
            .spawn(move || watch_loop(read, shared, ended, tx));
        PidWatch {
            add,
            known,
            wake_fd: spawned.is_ok().then_some(write),
        }
    }

    /// Tells the watcher about `agent`'s pane process.
    pub fn watch(&mut self, agent: &str, pid: u32) {
        let Some(fd) = &self.wake_fd else {
            return;
        };
        if !self.known.lock().is_ok_and(|mut k| k.insert(pid)) {
            return;
        }
        if let Ok(mut add) = self.add.lock() {
            add.push((agent.to_owned(), pid));
        }
        use std::os::fd::AsRawFd;
        // SAFETY: writes one byte from a valid buffer to a pipe we own.
        unsafe {
            libc::write(fd.as_raw_fd(), [1u8].as_ptr().cast(), 1);
        }
    }
}

fn pipe() -> Option<(std::os::fd::OwnedFd, std::os::fd::OwnedFd)> {
    use std::os::fd::FromRawFd;
    let mut fds = [0i32; 2];
    // SAFETY: pipe2 fills the two-element array it is given.
    let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) };
    if rc != 0 {
        return None;
    }
    // SAFETY: both descriptors were just created and are owned by nobody else.
    unsafe {
        Some((
            std::os::fd::OwnedFd::from_raw_fd(fds[0]),
            std::os::fd::OwnedFd::from_raw_fd(fds[1]),
        ))
    }
}

/// A pidfd for `pid`, or `None` when the kernel has none (or the process is gone already,
/// which the caller reports as an exit).
fn pidfd_open(pid: u32) -> Result<std::os::fd::OwnedFd, i32> {
    use std::os::fd::FromRawFd;
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0));
    }
    // SAFETY: the descriptor was just returned to us.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as i32) })
}

struct Watched {
    agent: String,
    pid: u32,
    fd: Option<std::os::fd::OwnedFd>,
}

fn watch_loop(
    wake: std::os::fd::OwnedFd,
    add: Arc<Mutex<Vec<(String, u32)>>>,
    known: Arc<Mutex<BTreeSet<u32>>>,
    tx: Sender<Wake>,
) {
    use std::os::fd::AsRawFd;
    let mut watched: BTreeMap<u32, Watched> = BTreeMap::new();
    loop {
        let new = add
            .lock()
            .map(|mut a| std::mem::take(&mut *a))
            .unwrap_or_default();
        for (agent, pid) in new {
            if watched.contains_key(&pid) {
                continue;
            }
            match pidfd_open(pid) {
                Ok(fd) => {
                    watched.insert(
                        pid,
                        Watched {
                            agent,
                            pid,
                            fd: Some(fd),
                        },
                    );
                }
                Err(libc::ESRCH) => {
                    // Already gone.
                    forget(&known, pid);
                    if tx.send(Wake::Exited { agent, pid }).is_err() {
                        return;
                    }
                }
                Err(_) => {
                    watched.insert(
                        pid,
                        Watched {
                            agent,
                            pid,
                            fd: None,
                        },
                    );
                }
            }
        }
        let mut polls = vec![libc::pollfd {
            fd: wake.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        let order: Vec<u32> = watched
            .values()
            .filter(|w| w.fd.is_some())
            .map(|w| w.pid)
            .collect();
        for pid in &order {
            let fd = watched[pid].fd.as_ref().map_or(-1, |f| f.as_raw_fd());
            polls.push(libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            });
        }
        let fallback = watched.values().any(|w| w.fd.is_none());
        let timeout = if fallback {
            FALLBACK_POLL.as_millis() as i32
        } else {
            -1
        };
        // SAFETY: `polls` is a valid array of pollfd of the given length.
        let n = unsafe { libc::poll(polls.as_mut_ptr(), polls.len() as libc::nfds_t, timeout) };
        if n < 0 {
            continue; // EINTR
        }
        if polls[0].revents & libc::POLLIN != 0 {
            let mut buf = [0u8; 64];
            // SAFETY: reads into a valid buffer from our own non-blocking pipe.
            while unsafe { libc::read(wake.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) } > 0 {}
        }
        let mut ended: Vec<u32> = order
            .iter()
            .zip(&polls[1..])
            .filter(|(_, p)| p.revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0)
            .map(|(pid, _)| *pid)
            .collect();
        if fallback {
            ended.extend(
                watched
                    .values()
                    .filter(|w| w.fd.is_none() && !crate::tmux::process_running(w.pid))
                    .map(|w| w.pid),
            );
        }
        for pid in ended {
            forget(&known, pid);
            if let Some(w) = watched.remove(&pid)
                && tx
                    .send(Wake::Exited {
                        agent: w.agent,
                        pid: w.pid,
                    })
                    .is_err()
            {
                return;
            }
        }
    }
}

/// A process ended: its pid may come back as another process, which must be watched again.
fn forget(known: &Mutex<BTreeSet<u32>>, pid: u32) {
    if let Ok(mut k) = known.lock() {
        k.remove(&pid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exited(rx: &crossbeam_channel::Receiver<Wake>) -> u32 {
        match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(Wake::Exited { pid, .. }) => pid,
            Ok(Wake::Reply(_)) => panic!("not an exit"),
            Err(e) => panic!("no exit reported: {e}"),
        }
    }

    #[test]
    fn a_pid_listed_again_is_watched_once_and_again_after_it_ended() {
        let (tx, rx) = crossbeam_channel::unbounded();
        let mut pids = PidWatch::start(tx);
        let mut child = std::process::Command::new("sleep")
            .arg("60")
            .spawn()
            .unwrap();
        let pid = child.id();
        pids.watch("otter", pid);
        pids.watch("otter", pid);
        assert_eq!(pids.known.lock().unwrap().len(), 1);
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(exited(&rx), pid);
        assert!(!pids.known.lock().unwrap().contains(&pid));
        // The same number again (a new process could have it) is watched again.
        pids.watch("otter", pid);
        assert_eq!(exited(&rx), pid);
    }
}
