//! The request's hard deadline, kept by the kernel: a one-shot `ITIMER_REAL` whose SIGALRM
//! prints one line and ends the process with exit 1, whatever it was waiting on (a stdin
//! that never closes, a stuck lock, a mint). The kubelet kills plugins after a minute and
//! then logs nothing useful, so we fail first, on our own terms.
//!
//! A timer rather than a watchdog thread: a thread costs a cache hit its clone, its stack and
//! a malloc arena, which is most of what a hit does besides starting. Nothing reaches stdout
//! before the timer is disarmed, so firing can leave no partial answer behind.
//!
//! The timer survives `exec`, its handler does not, and a blocked or ignored SIGALRM is
//! inherited too: so each binary installs the handler and unblocks the signal first thing
//! ([`install`]), and the front blocks it before handing over ([`hold`]), so that a
//! timer firing in between stays pending until the minting binary has its handler. A child
//! process group that the request started (a credential helper) is registered with
//! [`ChildGroup`] and killed on every way out, the deadline's included.

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicPtr, Ordering};
use std::time::Duration;

/// The line the signal handler writes, as one pointer (so the handler never pairs one line's
/// start with another's length): set before the timer is armed, never freed.
static LINE: AtomicPtr<&'static [u8]> = AtomicPtr::new(std::ptr::null_mut());

/// Whether [`install`] ran: the handler is in place and the signal unblocked (nothing in
/// this process blocks it again but [`hold`], which is undone before anything waits).
static INSTALLED: AtomicBool = AtomicBool::new(false);

/// The process group of a running child of this request, 0 when none.
static CHILD_GROUP: AtomicI32 = AtomicI32::new(0);

/// Set for the minting binary by the front: the configured deadline, for the line printed if
/// the front's timer fires before the minting binary has read its config.
pub const FRONT_DEADLINE_VAR: &str = "PULLCRED_FRONT_DEADLINE";

/// Installs the deadline's handler, its line naming `limit` (the configured deadline, when
/// known), and unblocks SIGALRM. First thing in each binary: a timer inherited across `exec`
/// may already have fired, and its signal, pending while blocked, is handled here.
pub fn install(limit: Option<&str>) {
    match limit {
        Some(l) => set_line(format!("pullcred: no answer within the deadline of {l}\n")),
        None => {
            static GENERIC: &[u8] = b"pullcred: no answer within the deadline\n";
            // Only ever read through this pointer.
            LINE.store(&raw const GENERIC as *mut &'static [u8], Ordering::SeqCst);
        }
    }
    // SAFETY: installing a handler that only makes async-signal-safe calls, then changing
    // this thread's signal mask; both plain system calls on values we own.
    unsafe {
        libc::signal(
            libc::SIGALRM,
            on_deadline as extern "C" fn(libc::c_int) as libc::sighandler_t,
        );
        set_alarm_blocked(false);
    }
    INSTALLED.store(true, Ordering::SeqCst);
}

/// Holds the deadline's signal (blocks SIGALRM) across a step that must not be cut in two:
/// the front's `exec` of the minting binary (if the timer fires before the new program
/// installs its handler, the signal waits for it instead of ending the process without a
/// word), and starting a child until its group is registered. [`release`] undoes it.
pub fn hold() {
    // SAFETY: changing this thread's signal mask.
    unsafe { set_alarm_blocked(true) }
}

/// Undoes [`hold`]: a deadline that passed meanwhile is handled now.
pub fn release() {
    // SAFETY: changing this thread's signal mask.
    unsafe { set_alarm_blocked(false) }
}

unsafe fn set_alarm_blocked(blocked: bool) {
    // SAFETY: the caller's; plain system calls on a set we own.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGALRM);
        let how = if blocked {
            libc::SIG_BLOCK
        } else {
            libc::SIG_UNBLOCK
        };
        libc::sigprocmask(how, &set, std::ptr::null_mut());
    }
}

/// A child's process group, killed when this is dropped, when the deadline fires, or on a
/// panic ([`kill_child_group`]), so nothing the request started outlives it.
pub struct ChildGroup(i32);

impl ChildGroup {
    pub fn watch(group: i32) -> Self {
        CHILD_GROUP.store(group, Ordering::SeqCst);
        ChildGroup(group)
    }
}

impl Drop for ChildGroup {
    fn drop(&mut self) {
        let _ = CHILD_GROUP.compare_exchange(self.0, 0, Ordering::SeqCst, Ordering::SeqCst);
        kill_group(self.0);
    }
}

/// Kills the registered child process group, if any. Async-signal-safe.
pub fn kill_child_group() {
    kill_group(CHILD_GROUP.swap(0, Ordering::SeqCst));
}

fn kill_group(group: i32) {
    if group > 0 {
        // SAFETY: a plain system call; a group that is gone is no error worth reporting.
        unsafe {
            libc::kill(-group, libc::SIGKILL);
        }
    }
}

/// An armed deadline; dropping it disarms the timer.
#[must_use = "the deadline is disarmed when this is dropped"]
pub struct Armed(());

/// Arms the deadline `limit` from now, or sooner: a timer already running (the front binary's,
/// kept across its `exec` of the minting binary) is not extended. Returns the armed guard
/// and the time it allows; the line printed names `limit`, the deadline as configured.
pub fn arm_within(limit: Duration) -> (Armed, Duration) {
    let left = remaining()
        .filter(|r| !r.is_zero())
        .map_or(limit, |r| r.min(limit));
    (arm_named(limit, left), left)
}

/// The time left on a running timer, if one is.
fn remaining() -> Option<Duration> {
    let mut current = libc::itimerval {
        it_interval: libc::timeval {
            tv_sec: 0,
            tv_usec: 0,
        },
        it_value: libc::timeval {
            tv_sec: 0,
            tv_usec: 0,
        },
    };
    // SAFETY: a plain system call filling a value we own.
    let ok = unsafe { libc::getitimer(libc::ITIMER_REAL, &mut current) } == 0;
    let v = current.it_value;
    (ok && (v.tv_sec > 0 || v.tv_usec > 0))
        .then(|| Duration::new(v.tv_sec as u64, v.tv_usec as u32 * 1000))
}

/// Arms the deadline `limit` from now.
pub fn arm(limit: Duration) -> Armed {
    arm_named(limit, limit)
}

fn arm_named(configured: Duration, after: Duration) -> Armed {
    let text = humantime::format_duration(configured).to_string();
    if INSTALLED.load(Ordering::SeqCst) {
        // The handler is in place and the signal unblocked: the line is all that changes.
        set_line(format!(
            "pullcred: no answer within the deadline of {text}\n"
        ));
    } else {
        install(Some(&text));
    }
    set_timer(after);
    Armed(())
}

/// Sets the line the handler writes. The old one is leaked: a handler running now may still
/// be reading it, and there are at most a few per process.
fn set_line(text: String) {
    let bytes: &'static [u8] = Box::leak(text.into_bytes().into_boxed_slice());
    LINE.store(Box::leak(Box::new(bytes)), Ordering::SeqCst);
}

impl Drop for Armed {
    fn drop(&mut self) {
        set_timer(Duration::ZERO);
    }
}

fn set_timer(after: Duration) {
    let value = libc::timeval {
        tv_sec: after.as_secs() as libc::time_t,
        tv_usec: after.subsec_micros() as libc::suseconds_t,
    };
    let timer = libc::itimerval {
        it_interval: libc::timeval {
            tv_sec: 0,
            tv_usec: 0,
        },
        it_value: value,
    };
    // SAFETY: a plain system call on a value we own; a zero value disarms.
    unsafe {
        libc::setitimer(libc::ITIMER_REAL, &timer, std::ptr::null_mut());
    }
}

extern "C" fn on_deadline(_: libc::c_int) {
    kill_child_group();
    let line = LINE.load(Ordering::SeqCst);
    // SAFETY: async-signal-safe calls only; `line` is null or points at a leaked slice
    // reference (`set_line`) that stays valid for the life of the process.
    unsafe {
        if let Some(bytes) = line.as_ref() {
            libc::write(2, bytes.as_ptr() as *const libc::c_void, bytes.len());
        }
        libc::_exit(1);
    }
}
