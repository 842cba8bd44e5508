//! Local vision of the estate gateway (face detection and embedding, the 1:N
//! gallery, plate reading). Being built under issue 4; nothing here yet.
