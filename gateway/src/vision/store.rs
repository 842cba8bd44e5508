//! Face templates in sled (tree `faces`), beside the roster: the gallery is
//! rebuilt from here at start. Key: person id, a zero byte, template number
//! (big-endian, so a person's templates sort together); value: the embedding
//! as little-endian IEEE half precision (the gallery keeps templates in half
//! precision anyway; half the bytes for sled to read and cache).

use half::f16;
use models::face::DIM;
use models::gallery::{Gallery, GalleryOptions};

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("face store: {0}")]
    Sled(#[from] sled::Error),
    #[error("face store: template {key} is {len} bytes, expected {expected}")]
    Corrupt {
        key: String,
        len: usize,
        expected: usize,
    },
}

#[derive(Clone)]
pub struct FaceStore {
    tree: sled::Tree,
}

/// A template as stored: little-endian half precision.
fn encode(t: &[f32]) -> Vec<u8> {
    t.iter()
        .flat_map(|x| f16::from_f32(*x).to_le_bytes())
        .collect()
}

fn prefix(person: &str) -> Vec<u8> {
    let mut k = person.as_bytes().to_vec();
    k.push(0);
    k
}

impl FaceStore {
    pub fn open(db: &sled::Db) -> Result<Self, StoreError> {
        Ok(Self {
            tree: db.open_tree("faces")?,
        })
    }

    /// Calls `f` with every template (person, embedding), in key order, one at
    /// a time: a large gallery is loaded without a second copy of it in memory.
    pub fn for_each(&self, mut f: impl FnMut(&str, &[f32])) -> Result<usize, StoreError> {
        let mut n = 0;
        let mut e = Vec::with_capacity(DIM);
        for item in self.tree.iter() {
            let (k, v) = item?;
            let Some(end) = k.iter().position(|b| *b == 0) else {
                continue;
            };
            let person = String::from_utf8_lossy(&k[..end]);
            if v.len() != DIM * 2 {
                return Err(StoreError::Corrupt {
                    key: person.into_owned(),
                    len: v.len(),
                    expected: DIM * 2,
                });
            }
            e.clear();
            e.extend(
                v.chunks_exact(2)
                    .map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32()),
            );
            f(&person, &e);
            n += 1;
        }
        Ok(n)
    }

    /// Stores many templates at once with one flush (bulk imports); each
    /// person's templates are numbered after those already stored.
    pub fn add_many<'a>(
        &self,
        items: impl IntoIterator<Item = (&'a str, &'a [f32])>,
    ) -> Result<usize, StoreError> {
        let mut next: std::collections::HashMap<&str, u32> = std::collections::HashMap::new();
        let mut batch = sled::Batch::default();
        let mut n = 0;
        for (person, t) in items {
            let p = prefix(person);
            let i = match next.get_mut(person) {
                Some(i) => i,
                None => {
                    let first = self.next_number(&p)?;
                    next.entry(person).or_insert(first)
                }
            };
            let mut k = p;
            k.extend_from_slice(&i.to_be_bytes());
            *i += 1;
            batch.insert(k, encode(t));
            n += 1;
        }
        self.tree.apply_batch(batch)?;
        self.tree.flush()?;
        Ok(n)
    }

    /// The number the next template of a person (key prefix `p`) gets.
    fn next_number(&self, p: &[u8]) -> Result<u32, StoreError> {
        Ok(match self.tree.scan_prefix(p).keys().next_back() {
            Some(k) => {
                let k = k?;
                let n = &k[p.len()..];
                if n.len() == 4 {
                    u32::from_be_bytes([n[0], n[1], n[2], n[3]]) + 1
                } else {
                    0
                }
            }
            None => 0,
        })
    }

    /// Adds templates of a person, durably; returns how many the person has now.
    pub fn add(&self, person: &str, templates: &[Vec<f32>]) -> Result<u32, StoreError> {
        self.add_many(templates.iter().map(|t| (person, t.as_slice())))?;
        Ok(self.tree.scan_prefix(prefix(person)).count() as u32)
    }

    /// Forgets a person's templates.
    pub fn remove(&self, person: &str) -> Result<u32, StoreError> {
        let mut batch = sled::Batch::default();
        let mut n = 0;
        for k in self.tree.scan_prefix(prefix(person)).keys() {
            batch.remove(k?);
            n += 1;
        }
        self.tree.apply_batch(batch)?;
        self.tree.flush()?;
        Ok(n)
    }
}

/// Reads every template of the store into a gallery.
pub fn read_gallery(store: &FaceStore, options: GalleryOptions) -> Result<Gallery, StoreError> {
    let mut gallery = Gallery::new(DIM, options);
    // One pass over the store (sled's len() would be a second one).
    gallery.bulk(|g| store.for_each(|p, e| g.insert(p, e)))?;
    Ok(gallery)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_survive_a_reopen_and_persons_stay_apart() {
        let dir = tempfile::tempdir().unwrap();
        let t = |x: f32| vec![x; DIM];
        {
            let db = sled::open(dir.path()).unwrap();
            let s = FaceStore::open(&db).unwrap();
            assert_eq!(s.add("p1", &[t(0.1), t(0.2)]).unwrap(), 2);
            assert_eq!(s.add("p1", &[t(0.3)]).unwrap(), 3);
            assert_eq!(s.add("p10", &[t(0.4)]).unwrap(), 1);
            assert_eq!(s.remove("p1").unwrap(), 3);
            assert_eq!(s.add("p1", &[t(0.5)]).unwrap(), 1);
        }
        let db = sled::open(dir.path()).unwrap();
        let s = FaceStore::open(&db).unwrap();
        let (a, b) = (t(0.6), t(0.7));
        assert_eq!(s.add_many([("p10", &a[..]), ("p2", &b[..])]).unwrap(), 2);
        let mut n = 0;
        assert_eq!(s.for_each(|_, e| n += e.len()).unwrap(), 4);
        assert_eq!(n, 4 * DIM);
        assert_eq!(s.remove("p2").unwrap(), 1);
        drop(s);
        let mut all = Vec::new();
        FaceStore::open(&db)
            .unwrap()
            .for_each(|p, e| all.push((p.to_owned(), e.to_vec())))
            .unwrap();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(all.len(), 3);
        assert_eq!(all[0].0, "p1");
        assert_eq!(all[0].1[0], 0.5);
        // p10's template from add_many is numbered after the one stored before.
        assert_eq!(all[1].0, "p10");
        assert_eq!(all[1].1[0], f16::from_f32(0.4).to_f32());
        assert_eq!(all[2].0, "p10");
        assert_eq!(all[2].1[0], f16::from_f32(0.6).to_f32());
    }
}
