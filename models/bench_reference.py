#!/usr/bin/env python3
"""The Python reference of `gatewayd bench faces`: the same YuNet and SFace
files run through OpenCV's own DNN module (cv2.dnn for YuNet with the same
decoding and input size as the gateway's, cv2.FaceRecognizerSF for alignment
and SFace), on the same frame, one thread. Prints one JSON line: ms per frame
and the embedding.

Each side gets the form of SFace it runs best: models/fetch.py rewrote SFace's
PRelu activations as min/mul/sub for ONNX Runtime, which makes OpenCV's DNN
slower (it fuses PRelu itself), so the PRelus are put back here, in memory.

    bench_reference.py FRAME.png MODELS_DIR ITERATIONS [ROUNDS]

The figure is the best round's mean (rounds of ITERATIONS frames): on a shared
machine the best round is the one least disturbed by other work.
"""
import json
import sys
import time

import cv2
import numpy as np

INPUT = 640


def prelu_form(path):
    """SFace as ONNX bytes with each x - (1-s)*min(x,0) of fetch.py's
    `prelu_as_min` turned back into PRelu(x, s)."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(path)
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    by_out = {o: n for n in graph.node for o in n.output}
    drop, nodes = set(), []
    for node in graph.node:
        if node.op_type == "Sub" and node.name.endswith("_sub"):
            mul = by_out.get(node.input[1])
            mn = by_out.get(mul.input[0]) if mul is not None else None
            if mul is not None and mn is not None and mn.op_type == "Min":
                c = numpy_helper.to_array(inits[mul.input[1]])
                slope = node.name[:-4] + "_slope"
                graph.initializer.append(numpy_helper.from_array((1.0 - c).astype(np.float32), slope))
                nodes.append(helper.make_node("PRelu", [node.input[0], slope], node.output))
                drop.update({id(mul), id(mn)})
                continue
        nodes.append(node)
    nodes = [n for n in nodes if id(n) not in drop]
    del graph.node[:]
    graph.node.extend(nodes)
    used = {i for n in graph.node for i in n.input}
    kept = [i for i in graph.initializer if i.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    return model.SerializeToString()


def detect(net, img, threshold=0.6, nms=0.3):
    h, w = img.shape[:2]
    scale = min(INPUT / w, INPUT / h)
    sw, sh = max(1, round(w * scale)), max(1, round(h * scale))
    # The same input size as the gateway's: the scaled frame, padded to multiples of 32.
    iw, ih = -(-sw // 32) * 32, -(-sh // 32) * 32
    canvas = np.zeros((ih, iw, 3), np.uint8)
    canvas[:sh, :sw] = cv2.resize(img, (sw, sh)) if (sw, sh) != (w, h) else img
    net.setInput(cv2.dnn.blobFromImage(canvas))
    names = [f"{k}_{s}" for k in ("cls", "obj", "bbox", "kps") for s in (8, 16, 32)]
    outs = dict(zip(names, net.forward(names)))
    faces = []
    for s in (8, 16, 32):
        cols = iw // s
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
    rounds = int(sys.argv[4]) if len(sys.argv) > 4 else 1
    cv2.setNumThreads(1)
    img = cv2.imread(frame)
    net = cv2.dnn.readNet(f"{models}/yunet.onnx")
    sface = f"{models}/sface.onnx"
    try:
        import tempfile
        tmp = tempfile.NamedTemporaryFile(suffix=".onnx", delete=False)
        tmp.write(prelu_form(sface))
        tmp.close()
        sface = tmp.name
    except ImportError:  # no onnx package: the file as it is
        pass
    rec = cv2.FaceRecognizerSF.create(sface, "")
    embedding = None
    for _ in range(3):  # warm-up
        f = detect(net, img)
        embedding = rec.feature(rec.alignCrop(img, f[0])).reshape(-1)
    ms = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(iters):
            f = detect(net, img)
            embedding = rec.feature(rec.alignCrop(img, f[0])).reshape(-1)
        ms = min(ms, (time.perf_counter() - t0) * 1000 / iters)
    embedding = embedding / np.linalg.norm(embedding)
    print(json.dumps({"ms": ms, "faces": len(f), "opencv": cv2.__version__,
                      "embedding": embedding.tolist()}))


if __name__ == "__main__":
    main()
