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

/// A name not in `taken`. Seeded from the clock and process id; after enough misses it falls
/// back to a numbered name, so it always ends.
pub fn generate(taken: &dyn Fn(&str) -> bool) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let mut seed = nanos ^ (u64::from(std::process::id()) << 32) ^ 0x9e37_79b9_7f4a_7c15;
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
    fn names_are_valid_and_unique() {
        let mut taken = BTreeSet::new();
        for _ in 0..200 {
            let name = generate(&|n| taken.contains(n));
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
