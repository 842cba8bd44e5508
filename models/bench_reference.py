#!/usr/bin/env python3
"""The Python reference of `gatewayd bench faces`: the same YuNet and SFace
files run through OpenCV's own DNN module (cv2.dnn for YuNet with the same
decoding as the gateway's, cv2.FaceRecognizerSF for alignment and SFace), on
the same frame, one thread. Prints one JSON line: ms per frame and the embedding.

    bench_reference.py FRAME.png MODELS_DIR ITERATIONS
"""
import json
import sys
import time

import cv2
import numpy as np

INPUT = 640


def detect(net, img, threshold=0.6, nms=0.3):
    h, w = img.shape[:2]
    scale = min(INPUT / w, INPUT / h)
    sw, sh = max(1, round(w * scale)), max(1, round(h * scale))
    canvas = np.zeros((INPUT, INPUT, 3), np.uint8)
    canvas[:sh, :sw] = cv2.resize(img, (sw, sh)) if (sw, sh) != (w, h) else img
    net.setInput(cv2.dnn.blobFromImage(canvas))
    names = [f"{k}_{s}" for k in ("cls", "obj", "bbox", "kps") for s in (8, 16, 32)]
    outs = dict(zip(names, net.forward(names)))
    faces = []
    for s in (8, 16, 32):
        cols = INPUT // s
        cls = outs[f"cls_{s}"].reshape(-1)
        obj = outs[f"obj_{s}"].reshape(-1)
        bbox = outs[f"bbox_{s}"].reshape(-1, 4)
        kps = outs[f"kps_{s}"].reshape(-1, 10)
        score = np.sqrt(np.clip(cls, 0, 1) * np.clip(obj, 0, 1))
        for i in np.nonzero(score >= threshold)[0]:
            r, c = divmod(int(i), cols)
            cx, cy = (c + bbox[i, 0]) * s, (r + bbox[i, 1]) * s
            bw, bh = np.exp(bbox[i, 2]) * s, np.exp(bbox[i, 3]) * s
            lm = [((c + kps[i, 2 * j]) * s, (r + kps[i, 2 * j + 1]) * s) for j in range(5)]
            faces.append([cx - bw / 2, cy - bh / 2, bw, bh] + [v for p in lm for v in p] + [score[i]])
    if not faces:
        return np.zeros((0, 15), np.float32)
    faces = np.array(faces, np.float32)
    keep = cv2.dnn.NMSBoxes(faces[:, :4].tolist(), faces[:, 14].tolist(), threshold, nms)
    faces = faces[np.array(keep).reshape(-1)]
    faces[:, :14] /= scale
    return faces


def main():
    frame, models, iters = sys.argv[1], sys.argv[2], int(sys.argv[3])
    cv2.setNumThreads(1)
    img = cv2.imread(frame)
    net = cv2.dnn.readNet(f"{models}/yunet.onnx")
    rec = cv2.FaceRecognizerSF.create(f"{models}/sface.onnx", "")
    embedding = None
    for _ in range(3):  # warm-up
        f = detect(net, img)
        embedding = rec.feature(rec.alignCrop(img, f[0])).reshape(-1)
    t0 = time.perf_counter()
    for _ in range(iters):
        f = detect(net, img)
        embedding = rec.feature(rec.alignCrop(img, f[0])).reshape(-1)
    ms = (time.perf_counter() - t0) * 1000 / iters
    embedding = embedding / np.linalg.norm(embedding)
    print(json.dumps({"ms": ms, "faces": len(f), "opencv": cv2.__version__,
                      "embedding": embedding.tolist()}))


if __name__ == "__main__":
    main()
