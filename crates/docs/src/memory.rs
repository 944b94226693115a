//! Giving memory back to the system after a document is typeset.
//!
//! A PDF makes typst allocate tens of megabytes (its memoisation cache, layout, the
//! fonts' tables). Freed, those pages stay with the allocator: jemalloc returns dirty
//! pages only after `dirty_decay_ms` (ten seconds by default). A worker that typesets
//! the audit pack's index and then copies a gigabyte of evidence would carry them
//! through the whole copy; issue 8 holds the pack to 100 MB resident, and these pages
//! were the difference (docs/PERFORMANCE.md).

use tikv_jemalloc_ctl::{Access, AsName, arenas};

/// Drops typst's memoised results and has jemalloc return every freed page now.
///
/// typst-as-lib already evicts comemo's cache once compilation ends; evicting again
/// here also drops what the PDF export memoised after that.
///
/// Returning pages is done by setting each arena's decay time to zero, which purges
/// its dirty pages at once, and then back to the process's default: the safe controls
/// allow that, where jemalloc's own `arena.<i>.purge` takes no value and so needs an
/// `unsafe` call, which the workspace forbids. Restoring the default rather than the
/// value read before matters when two PDFs finish together: one could otherwise read
/// the other's zero and leave it in place for good. Outside a jemalloc process (tests
/// of other crates, a build with another allocator) there is nothing to purge and it
/// does nothing harmful: jemalloc's own, unused arenas are purged.
pub(crate) fn give_back_freed_pages() {
    comemo::evict(0);
    let (Ok(count), Ok(default)) = (
        arenas::narenas::read(),
        Access::<isize>::read(b"arenas.dirty_decay_ms\0".name()),
    ) else {
        return;
    };
    for i in 0..count {
        let key = format!("arena.{i}.dirty_decay_ms\0");
        let name = key.as_str().name();
        // An index no arena was ever created for answers an error: skip it.
        if Access::<isize>::write(name, 0).is_ok()
            && let Err(e) = Access::<isize>::write(name, default)
        {
            tracing::warn!(error = %e, arena = i, "could not restore an arena's decay time");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::give_back_freed_pages;
    use tikv_jemalloc_ctl::{Access, AsName, epoch};

    #[global_allocator]
    static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

    /// Dirty pages of every arena, in pages.
    fn dirty_pages() -> usize {
        epoch::advance().unwrap();
        // 4096 is MALLCTL_ARENAS_ALL: the sum over arenas.
        Access::<usize>::read(b"stats.arenas.4096.pdirty\0".name()).unwrap()
    }

    #[test]
    fn freed_pages_are_returned_and_the_decay_time_restored() {
        let before: isize = Access::<isize>::read(b"arena.0.dirty_decay_ms\0".name()).unwrap();
        // Many mid-sized allocations, freed: their pages become dirty, not returned.
        let blocks: Vec<Vec<u8>> = (0..2_000).map(|i| vec![i as u8; 16 * 1024]).collect();
        drop(blocks);
        let dirty = dirty_pages();
        assert!(dirty > 1_000, "freed pages are kept dirty: {dirty}");
        give_back_freed_pages();
        let after = dirty_pages();
        assert!(after < dirty / 10, "dirty pages {dirty} -> {after}");
        assert_eq!(
            Access::<isize>::read(b"arena.0.dirty_decay_ms\0".name()).unwrap(),
            before,
            "the decay time is as it was"
        );

        // Another render caught between its zero and its restore: this one does not
        // take that zero for the arena's setting.
        Access::<isize>::write(b"arena.0.dirty_decay_ms\0".name(), 0).unwrap();
        give_back_freed_pages();
        assert_eq!(
            Access::<isize>::read(b"arena.0.dirty_decay_ms\0".name()).unwrap(),
            before,
            "the default is restored, not the zero a concurrent purge left"
        );
    }
}
