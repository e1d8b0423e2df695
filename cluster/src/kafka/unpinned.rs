//! Creating librdkafka clients off the shard's core.
//!
//! A librdkafka client starts threads of its own (a main thread and one per
//! broker), and a new thread inherits the CPU set of the thread that starts
//! it. Clients are opened on the shards, which are pinned each to one CPU:
//! librdkafka's threads would then share the shard's core and wait for it
//! while the shard runs (reads stalled for seconds, measured). So clients
//! are created on a short-lived thread allowed on the CPUs of the process's
//! main thread (which Sluice never pins).

/// Runs `make` on a thread allowed on every CPU the process's main thread
/// may use; returns what it made.
pub(crate) fn unpinned<T: Send>(make: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                allow_main_threads_cpus();
                make()
            })
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// Gives the calling thread the main thread's CPU set (best effort: left
/// as it is if either call fails).
fn allow_main_threads_cpus() {
    // SAFETY: `cpu_set_t` is plain bits; all zeros is a valid (empty) set.
    let mut cpus: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let size = std::mem::size_of::<libc::cpu_set_t>();
    // SAFETY: `cpus` is a valid, writable cpu_set_t of `size` bytes; the
    // process id names the main thread.
    let got = unsafe { libc::sched_getaffinity(libc::getpid(), size, &mut cpus) };
    if got == 0 {
        // SAFETY: `cpus` was filled by the kernel above; 0 is this thread.
        unsafe { libc::sched_setaffinity(0, size, &cpus) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn empty_set() -> libc::cpu_set_t {
        // SAFETY: `cpu_set_t` is plain bits; all zeros is the empty set.
        unsafe { std::mem::zeroed() }
    }

    /// The CPUs this thread may run on.
    fn cpus_of_this_thread() -> Vec<usize> {
        let mut cpus = empty_set();
        let size = std::mem::size_of::<libc::cpu_set_t>();
        // SAFETY: a valid, writable set of `size` bytes; 0 is this thread.
        let got = unsafe { libc::sched_getaffinity(0, size, &mut cpus) };
        assert_eq!(got, 0);
        (0..libc::CPU_SETSIZE as usize)
            // SAFETY: reads the set the kernel filled; `cpu` is in range.
            .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &cpus) })
            .collect()
    }

    #[test]
    fn a_thread_pinned_to_one_cpu_creates_on_all_of_the_processs() {
        let all = cpus_of_this_thread();
        let seen = std::thread::spawn(|| {
            // Pin this thread to its first CPU, as a shard is.
            let first = cpus_of_this_thread()[0];
            let mut one = empty_set();
            // SAFETY: sets a bit of a valid set; `first` is in range.
            unsafe { libc::CPU_SET(first, &mut one) };
            let size = std::mem::size_of::<libc::cpu_set_t>();
            // SAFETY: a valid set of `size` bytes; 0 is this thread.
            assert_eq!(unsafe { libc::sched_setaffinity(0, size, &one) }, 0);
            assert_eq!(cpus_of_this_thread(), [first]);
            unpinned(cpus_of_this_thread)
        })
        .join()
        .unwrap();
        assert_eq!(seen, all);
    }
}
