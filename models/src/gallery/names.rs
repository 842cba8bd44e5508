//! The person ids of a gallery, interned: every id in one string and one hash
//! index of small numbers. For 100k residents that is ~2 MB, against ~8 MB as
//! separate shared strings in a map, and loading a large gallery leaves no
//! small allocations scattered through the heap (they kept freed pages of the
//! store's read-back resident).

use hashbrown::HashTable;
use std::hash::{BuildHasher, RandomState};

#[derive(Default)]
pub struct Names {
    text: String,
    /// Where each name ends in `text`; name `i` starts where `i - 1` ends.
    ends: Vec<u32>,
    index: HashTable<u32>,
    hasher: RandomState,
}

impl Names {
    /// The name numbered `id`.
    pub fn name(&self, id: u32) -> &str {
        slice(&self.text, &self.ends, id)
    }

    pub fn get(&self, name: &str) -> Option<u32> {
        let h = self.hasher.hash_one(name);
        self.index.find(h, |&i| self.name(i) == name).copied()
    }

    /// The number of `name`, given a new one the first time.
    pub fn intern(&mut self, name: &str) -> u32 {
        if let Some(i) = self.get(name) {
            return i;
        }
        let id = self.ends.len() as u32;
        self.text.push_str(name);
        self.ends.push(self.text.len() as u32);
        let h = self.hasher.hash_one(name);
        // A growing table rehashes its entries from the names they stand for.
        let (text, ends, hasher) = (&self.text, &self.ends, &self.hasher);
        self.index
            .insert_unique(h, id, |&i| hasher.hash_one(slice(text, ends, i)));
        id
    }

    /// Trims the buffers once a bulk load is done.
    pub fn shrink_to_fit(&mut self) {
        self.text.shrink_to_fit();
        self.ends.shrink_to_fit();
        let (text, ends, hasher) = (&self.text, &self.ends, &self.hasher);
        self.index
            .shrink_to_fit(|&i| hasher.hash_one(slice(text, ends, i)));
    }
}

fn slice<'a>(text: &'a str, ends: &[u32], id: u32) -> &'a str {
    let i = id as usize;
    let start = if i == 0 { 0 } else { ends[i - 1] as usize };
    &text[start..ends[i] as usize]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interns_and_finds() {
        let mut n = Names::default();
        let ids: Vec<u32> = (0..5000).map(|i| n.intern(&format!("p-{i}"))).collect();
        assert_eq!(ids, (0..5000).collect::<Vec<u32>>());
        assert_eq!(n.intern("p-42"), 42);
        assert_eq!(n.get("p-4999"), Some(4999));
        assert_eq!(n.get("p-5000"), None);
        assert_eq!(n.name(0), "p-0");
        assert_eq!(n.name(1234), "p-1234");
        n.shrink_to_fit();
        assert_eq!(n.get("p-77"), Some(77));
        assert_eq!(n.intern(""), 5000);
        assert_eq!(n.name(5000), "");
    }
}
