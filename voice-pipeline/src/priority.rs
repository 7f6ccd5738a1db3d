//! Inference runs below the calls' media threads: a frame that must go out within its 20 ms beats
//! a transcription or a synthesis that takes 150 ms either way. On Linux a thread's scheduling is
//! its own and the threads it starts (whisper.cpp's pool) inherit it.

/// Moves the calling thread to SCHED_IDLE: it runs on whatever CPU time the media threads leave.
pub fn lower_this_thread() {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: plain syscalls on this thread's own id (0 is the calling thread).
    unsafe {
        libc::sched_setscheduler(0, libc::SCHED_IDLE, &param);
    }
}

/// Runs `make` on a new lowered thread and returns what it made: the threads it starts (an
/// inference library's pool) are lowered too.
pub fn made_lowered<T: Send>(make: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        s.spawn(|| {
            lower_this_thread();
            make()
        })
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lowered_thread_and_the_threads_it_starts_are_idle_class() {
        let policy = || unsafe { libc::sched_getscheduler(0) };
        let before = policy();
        let (own, child) = std::thread::spawn(move || {
            lower_this_thread();
            (policy(), std::thread::spawn(policy).join().unwrap())
        })
        .join()
        .unwrap();
        assert_eq!((own, child), (libc::SCHED_IDLE, libc::SCHED_IDLE));
        assert_eq!(policy(), before, "only the thread that asked");
    }
}
