//! Engine behaviour, fed inputs with explicit times.
