//! Listings (`/v2/_catalog`, `/v2/<name>/tags/list`) page by page, as the
//! distribution spec pages them: `?n=` entries after `&last=`, the last
//! entry of the page before.
//!
//! The spec's `Link` header names the next page outright, but oci-client
//! hands back no response headers, so the next page is asked for from the
//! last entry, which is what that header holds. A listing ends on an empty
//! page, or one that holds nothing new (a registry that ignores `last`
//! answers the first page again); never on a short page, since a registry
//! may cap `n` below what was asked. A registry that refuses the page size
//! is asked again for half as many. The logic is pure — the request is the
//! caller's — so it is tested here against registries of every shape.

/// What one page request gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Page {
    Items(Vec<String>),
    /// The registry refused `n` (docker-registry's
    /// `PAGINATION_NUMBER_INVALID` above its `catalog.maxentries`).
    SizeRefused,
}

/// Entries asked for per page.
pub const PAGE: usize = 1000;
/// Pages followed at most in one listing (a million entries at 1000 each,
/// far more at a registry's smaller pages than any fleet needs).
pub const MAX_PAGES: usize = 100_000;

/// Every entry of a listing, in the registry's order, each once. `fetch`
/// asks for up to `n` entries after `last`; `fail` makes the error for a
/// listing that does not end or a registry that refuses even one entry a
/// page.
pub fn all_pages<E>(
    mut fetch: impl FnMut(Option<&str>, usize) -> Result<Page, E>,
    fail: impl Fn(String) -> E,
) -> Result<Vec<String>, E> {
    let mut out: Vec<String> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut n = PAGE;
    for _ in 0..MAX_PAGES {
        let last = out.last().cloned();
        let items = loop {
            match fetch(last.as_deref(), n)? {
                Page::Items(items) => break items,
                Page::SizeRefused if n > 1 => n /= 2,
                Page::SizeRefused => {
                    return Err(fail("the registry refuses even one entry a page".into()));
                }
            }
        };
        if items.is_empty() {
            return Ok(out);
        }
        let before = out.len();
        out.extend(items.into_iter().filter(|i| seen.insert(i.clone())));
        if out.len() == before {
            return Ok(out);
        }
    }
    Err(fail(format!(
        "a listing of more than {MAX_PAGES} pages: refused"
    )))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// A registry's listing behaviour.
    #[derive(Debug, Clone)]
    struct Fake {
        entries: Vec<String>,
        /// It serves at most this many a page, whatever was asked.
        cap: usize,
        /// It refuses pages asked larger than this.
        max_entries: usize,
        /// It answers from the start whatever `last` says.
        ignores_last: bool,
    }

    impl Fake {
        fn page(&self, last: Option<&str>, n: usize, calls: &mut usize) -> Page {
            *calls += 1;
            if n > self.max_entries {
                return Page::SizeRefused;
            }
            let start = match (last, self.ignores_last) {
                (Some(l), false) => self
                    .entries
                    .iter()
                    .position(|e| e == l)
                    .map_or(0, |i| i + 1),
                _ => 0,
            };
            let take = n.min(self.cap);
            Page::Items(
                self.entries
                    .iter()
                    .skip(start)
                    .take(take)
                    .cloned()
                    .collect(),
            )
        }
    }

    fn run(fake: &Fake) -> (Result<Vec<String>, String>, usize) {
        let mut calls = 0;
        let result = all_pages(|last, n| Ok(fake.page(last, n, &mut calls)), |m| m);
        (result, calls)
    }

    #[test]
    fn a_capped_registry_is_followed_to_the_end() {
        let fake = Fake {
            entries: (0..250).map(|i| format!("r{i:04}")).collect(),
            cap: 100,
            max_entries: 1000,
            ignores_last: false,
        };
        let (got, calls) = run(&fake);
        assert_eq!(got.unwrap(), fake.entries);
        assert_eq!(calls, 4, "three pages and the empty one");
    }

    #[test]
    fn a_refused_size_is_halved_and_one_refused_is_an_error() {
        let fake = Fake {
            entries: vec!["a".into(), "b".into()],
            cap: 1000,
            max_entries: 300,
            ignores_last: false,
        };
        assert_eq!(run(&fake).0.unwrap(), ["a", "b"]);
        let never = Fake {
            max_entries: 0,
            ..fake
        };
        assert!(run(&never).0.unwrap_err().contains("even one"));
    }

    proptest! {
        // PROPTEST_CASES=100000 for the dedicated run; 256 by default.
        #![proptest_config(ProptestConfig {
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        /// Whatever the registry's cap, size limit and listing, every entry
        /// comes back once and in order (the first page only, from a
        /// registry that ignores `last`), with a bounded number of calls.
        #[test]
        fn any_registry_lists_whole_and_ends(
            count in 0usize..3000,
            cap in 1usize..1200,
            max_entries in 1usize..1500,
            ignores_last in any::<bool>(),
        ) {
            let fake = Fake {
                entries: (0..count).map(|i| format!("repo-{i:05}")).collect(),
                cap,
                max_entries,
                ignores_last,
            };
            let (got, calls) = run(&fake);
            let got = got.unwrap();
            // The page size after halving, and what a page holds.
            let (mut n, mut refusals) = (PAGE, 0);
            while n > max_entries {
                n /= 2;
                refusals += 1;
            }
            let per_page = n.min(cap);
            if ignores_last {
                let first = count.min(per_page);
                prop_assert_eq!(&got[..], &fake.entries[..first]);
                // The first page, then the same again (or nothing): the end.
                prop_assert_eq!(calls, refusals + if count == 0 { 1 } else { 2 });
            } else {
                prop_assert_eq!(&got, &fake.entries);
                prop_assert_eq!(calls, refusals + count.div_ceil(per_page) + 1);
            }
        }
    }
}
