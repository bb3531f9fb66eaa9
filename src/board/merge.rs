//! Merging two saves of one task file, key by key, for the rare case where a person's save
//! lands in the microseconds batty's own version is on disk before being taken back: the save
//! made on batty's version is the newest and is kept, and the changes of the save it displaced
//! are carried into it for every key the newer save did not touch.

use super::frontmatter::{self, Layout};

/// A task file cut into its front matter keys (text of each, with leading comments), the
/// comments after the last key, and everything after the closing `---`.
struct Parts {
    chunks: Vec<(String, String)>,
    trailer: String,
    tail: String,
}

fn parts(bytes: &[u8]) -> Option<Parts> {
    let text = std::str::from_utf8(bytes).ok()?;
    let split = frontmatter::split(text).ok()?;
    let raw = frontmatter::parse(split.front).ok()?;
    let Layout { chunks, trailer } = frontmatter::layout(split.front, &raw.keys)?;
    Some(Parts {
        chunks: chunks
            .into_iter()
            .map(|c| (c.key, c.leading + &c.text))
            .collect(),
        trailer,
        tail: split.tail.to_owned(),
    })
}

impl Parts {
    fn get(&self, key: &str) -> Option<&str> {
        self.chunks
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, t)| t.as_str())
    }

    fn keys(&self) -> impl Iterator<Item = &str> {
        self.chunks.iter().map(|(k, _)| k.as_str())
    }
}

/// `newer` (a save made on top of `ours`) with the changes `older` made to `base`, for each
/// key (and the body) that `newer` left as `ours` had it. `None` when a file cannot be cut
/// into keys.
pub(crate) fn merge(base: &[u8], older: &[u8], ours: &[u8], newer: &[u8]) -> Option<Vec<u8>> {
    let (base, older, ours, newer) = (parts(base)?, parts(older)?, parts(ours)?, parts(newer)?);
    let mut out = Parts {
        chunks: newer.chunks.clone(),
        trailer: newer.trailer.clone(),
        tail: newer.tail.clone(),
    };
    let mut keys: Vec<&str> = base.keys().collect();
    keys.extend(older.keys().filter(|k| base.get(k).is_none()));
    for key in keys {
        let changed_by_older = older.get(key) != base.get(key);
        let kept_by_newer = newer.get(key) == ours.get(key);
        if !(changed_by_older && kept_by_newer) {
            continue;
        }
        let at = out.chunks.iter().position(|(k, _)| k == key);
        match (older.get(key), at) {
            (Some(text), Some(i)) => out.chunks[i].1 = text.to_owned(),
            (Some(text), None) => out.chunks.push((key.to_owned(), text.to_owned())),
            (None, Some(i)) => {
                out.chunks.remove(i);
            }
            (None, None) => {}
        }
    }
    if older.trailer != base.trailer && newer.trailer == ours.trailer {
        out.trailer = older.trailer;
    }
    if older.tail != base.tail && newer.tail == ours.tail {
        out.tail = older.tail;
    }
    let mut text = String::from("---\n");
    for (_, chunk) in &out.chunks {
        text.push_str(chunk);
    }
    text.push_str(&out.trailer);
    text.push_str("---\n");
    text.push_str(&out.tail);
    Some(text.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_side_keeps_what_it_changed() {
        let base = "---\nid: 1\ntitle: t\nstatus: todo\n---\n\nbody\n";
        let older = "---\nid: 1\ntitle: t\nstatus: todo\nowner: ada\n---\n\nnew body\n";
        let ours = "---\nid: 1\ntitle: t\nstatus: in-progress\n---\n\nbody\n";
        let newer = "---\nid: 1\ntitle: t2\nstatus: in-progress\n---\n\nbody\n";
        let merged = merge(
            base.as_bytes(),
            older.as_bytes(),
            ours.as_bytes(),
            newer.as_bytes(),
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(merged).unwrap(),
            "---\nid: 1\ntitle: t2\nstatus: in-progress\nowner: ada\n---\n\nnew body\n"
        );
        // Where both saves set a key, the newer one wins.
        let newer = "---\nid: 1\ntitle: t\nstatus: in-progress\nowner: sam\n---\n\nbody\n";
        let merged = merge(
            base.as_bytes(),
            older.as_bytes(),
            ours.as_bytes(),
            newer.as_bytes(),
        )
        .unwrap();
        assert!(String::from_utf8(merged).unwrap().contains("owner: sam\n"));
        assert!(merge(b"x", older.as_bytes(), ours.as_bytes(), newer.as_bytes()).is_none());
    }
}
