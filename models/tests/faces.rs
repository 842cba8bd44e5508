//! The face pipeline on real photos (from the face_recognition and opencv-doc
//! packages, fetched by models/fetch.py).

use models::face::{DetectOptions, FacePipeline, QualityOptions};
use models::{PhotoError, RuntimeOptions};
use std::path::PathBuf;
use std::sync::OnceLock;

fn testdata(name: &str) -> Vec<u8> {
    let p = models::runtime::default_models_dir()
        .join("testdata")
        .join(name);
    std::fs::read(&p)
        .unwrap_or_else(|e| panic!("{}: {e}: run `bash deploy/dev.sh setup` first", p.display()))
}

fn pipeline() -> &'static FacePipeline {
    static P: OnceLock<FacePipeline> = OnceLock::new();
    P.get_or_init(|| {
        FacePipeline::load(
            &RuntimeOptions::default(),
            DetectOptions::default(),
            QualityOptions::default(),
        )
        .expect("models load (run `bash deploy/dev.sh setup`)")
    })
}

fn embed(name: &str) -> Vec<f32> {
    let face = pipeline()
        .photo(&testdata(name))
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    face.analyzed.embedding.expect("usable face is embedded")
}

#[test]
fn same_person_matches_and_another_does_not() {
    let o1 = embed("obama.jpg");
    let o2 = embed("obama2.jpg");
    let o3 = embed("obama3.jpg");
    let b = embed("biden.jpg");
    let same = [
        models::face::cosine(&o1, &o2),
        models::face::cosine(&o1, &o3),
    ];
    let other = [models::face::cosine(&o1, &b), models::face::cosine(&o2, &b)];
    eprintln!("same {same:?} other {other:?}");
    for s in same {
        assert!(s > 0.5, "same person scored {s}");
    }
    for s in other {
        assert!(s < 0.3, "different persons scored {s}");
    }
    assert!((models::face::cosine(&o1, &o1) - 1.0).abs() < 1e-5);
}

#[test]
fn finds_landmarks_inside_the_face() {
    let img = models::image::decode(&testdata("obama.jpg")).unwrap();
    let faces = pipeline().detect(&img).unwrap();
    assert_eq!(faces.len(), 1, "{faces:?}");
    let f = &faces[0];
    assert!(f.score > 0.8);
    for p in f.landmarks {
        assert!(p.x > f.x && p.x < f.x + f.w && p.y > f.y && p.y < f.y + f.h);
    }
    // Image-left eye is left of the image-right eye, the mouth below the nose.
    assert!(f.landmarks[0].x < f.landmarks[1].x);
    assert!(f.landmarks[3].y > f.landmarks[2].y);
}

#[test]
fn enrollment_errors_are_clear() {
    let p = pipeline();
    let e = p.photo(b"GIF89a not a jpeg").unwrap_err();
    assert_eq!(e.code(), "not_an_image");
    let jpeg = testdata("obama.jpg");
    let e = p.photo(&jpeg[..jpeg.len() / 3]).unwrap_err();
    assert_eq!(e.code(), "not_an_image", "{e}");
    assert!(e.to_string().contains("truncated or corrupt"), "{e}");
    // The opencv-doc football photo: one player, his face 30 px high.
    let e = p.photo(&testdata("messi5.jpg")).unwrap_err();
    assert_eq!(e.code(), "too_small", "{e}");
    // Two persons side by side: several faces.
    let img = models::image::decode(&jpeg).unwrap();
    let biden = models::image::decode(&testdata("biden.jpg")).unwrap();
    let mut biden_scaled = opencv::core::Mat::default();
    use opencv::prelude::*;
    let k = img.rows() as f64 / biden.rows() as f64;
    opencv::imgproc::resize(
        &biden,
        &mut biden_scaled,
        opencv::core::Size::new(0, 0),
        k,
        k,
        opencv::imgproc::INTER_AREA,
    )
    .unwrap();
    let mut pair = opencv::core::Mat::default();
    let both = opencv::core::Vector::<opencv::core::Mat>::from_iter([img.clone(), biden_scaled]);
    opencv::core::hconcat(&both, &mut pair).unwrap();
    match p.photo_mat(&pair) {
        Err(PhotoError::SeveralFaces(2)) => {}
        Err(other) => panic!("expected several_faces, got {other}"),
        Ok(_) => panic!("expected several_faces"),
    }
    // Blurred: too blurry.
    let mut blurred = opencv::core::Mat::default();
    opencv::imgproc::gaussian_blur(
        &img,
        &mut blurred,
        opencv::core::Size::new(0, 0),
        6.0,
        6.0,
        opencv::core::BORDER_DEFAULT,
    )
    .unwrap();
    let e = p.photo_mat(&blurred).unwrap_err();
    assert_eq!(e.code(), "too_blurry", "{e}");
}

#[test]
fn a_bad_model_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let src = models::runtime::default_models_dir();
    std::fs::write(dir.path().join("yunet.onnx"), b"not a model").unwrap();
    let opts = RuntimeOptions {
        models_dir: PathBuf::from(dir.path()),
        threads: 1,
        arena: true,
    };
    let e = models::face::Detector::load(&opts, DetectOptions::default())
        .err()
        .expect("refused");
    assert!(e.to_string().contains("sha256"), "{e}");
    let _ = src;
}
