//! Agent names: two short lowercase words joined by `-` (`brave-otter`), as kanban-md's
//! `agent-name` makes them, unique within a phase.

const FIRST: &[&str] = &[
    "amber", "bold", "brave", "brisk", "calm", "clever", "cosmic", "crisp", "dapper", "eager",
    "fancy", "fierce", "gentle", "glad", "golden", "happy", "hardy", "jolly", "keen", "lively",
    "lucky", "merry", "mighty", "nimble", "noble", "plucky", "proud", "quick", "quiet", "rapid",
    "ready", "shiny", "silent", "sly", "steady", "sunny", "swift", "tidy", "witty", "zesty",
];

const SECOND: &[&str] = &[
    "badger", "beaver", "bison", "crane", "falcon", "ferret", "finch", "fox", "gecko", "heron",
    "ibis", "jackal", "koala", "lemur", "lynx", "marten", "mole", "moose", "newt", "ocelot",
    "otter", "owl", "panda", "puffin", "quail", "rabbit", "raven", "robin", "seal", "shrew",
    "sloth", "stoat", "swan", "tapir", "tiger", "toad", "vole", "walrus", "wombat", "yak",
];

/// The seed for a project's phase (FNV-1a of both): the same inputs give the same names, so
/// a `--dry-run` shows the names the real run will use.
pub fn seed(project: &str, phase: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in project.bytes().chain([0]).chain(phase.bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash | 1
}

/// The first name from `seed`'s sequence not in `taken`; after enough misses it falls back
/// to a numbered name, so it always ends.
pub fn generate(seed: u64, taken: &dyn Fn(&str) -> bool) -> String {
    let mut seed = seed ^ 0x9e37_79b9_7f4a_7c15;
    for _ in 0..400 {
        seed = xorshift(seed);
        let name = pick(seed);
        if !taken(&name) {
            return name;
        }
    }
    (2..)
        .map(|n| format!("{}{n}", pick(seed)))
        .find(|name| !taken(name))
        .expect("an unbounded sequence of distinct names has a free one")
}

fn pick(seed: u64) -> String {
    let a = FIRST[(seed % FIRST.len() as u64) as usize];
    let b = SECOND[((seed >> 20) % SECOND.len() as u64) as usize];
    format!("{a}-{b}")
}

fn xorshift(mut x: u64) -> u64 {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    x
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn same_seed_same_names() {
        let a = seed("/r", "v1");
        assert_eq!(a, seed("/r", "v1"));
        assert_ne!(a, seed("/r", "v2"));
        assert_eq!(generate(a, &|_| false), generate(a, &|_| false));
    }

    #[test]
    fn names_are_valid_and_unique() {
        let mut taken = BTreeSet::new();
        for _ in 0..200 {
            let name = generate(seed("/r", "v1"), &|n| taken.contains(n));
            crate::paths::validate_agent(&name).unwrap();
            assert!(taken.insert(name));
        }
    }

    #[test]
    fn words_are_short_lowercase() {
        for w in FIRST.iter().chain(SECOND) {
            assert!(
                w.len() <= 7 && w.bytes().all(|b| b.is_ascii_lowercase()),
                "{w}"
            );
        }
    }
}
