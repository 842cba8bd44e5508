//! Face templates in sled (tree `faces`), beside the roster: the gallery is
//! rebuilt from here at start. Key: person id, a zero byte, template number
//! (big-endian, so a person's templates sort together); value: the embedding
//! as little-endian f32.

use models::face::DIM;

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

    /// Every template: (person, embedding).
    pub fn load(&self) -> Result<Vec<(String, Vec<f32>)>, StoreError> {
        let mut out = Vec::new();
        for item in self.tree.iter() {
            let (k, v) = item?;
            let Some(end) = k.iter().position(|b| *b == 0) else {
                continue;
            };
            let person = String::from_utf8_lossy(&k[..end]).into_owned();
            if v.len() != DIM * 4 {
                return Err(StoreError::Corrupt {
                    key: person,
                    len: v.len(),
                    expected: DIM * 4,
                });
            }
            let e = v
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            out.push((person, e));
        }
        Ok(out)
    }

    /// Adds templates of a person, durably; returns how many the person has now.
    pub fn add(&self, person: &str, templates: &[Vec<f32>]) -> Result<u32, StoreError> {
        let p = prefix(person);
        let next = match self.tree.scan_prefix(&p).keys().next_back() {
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
        };
        let mut batch = sled::Batch::default();
        for (i, t) in templates.iter().enumerate() {
            let mut k = p.clone();
            k.extend_from_slice(&(next + i as u32).to_be_bytes());
            let v: Vec<u8> = t.iter().flat_map(|x| x.to_le_bytes()).collect();
            batch.insert(k, v);
        }
        self.tree.apply_batch(batch)?;
        self.tree.flush()?;
        Ok(self.tree.scan_prefix(&p).count() as u32)
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
        let mut all = FaceStore::open(&db).unwrap().load().unwrap();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].0, "p1");
        assert_eq!(all[0].1[0], 0.5);
        assert_eq!(all[1].0, "p10");
    }
}
