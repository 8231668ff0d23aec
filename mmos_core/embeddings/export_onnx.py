"""Build-time script: export all-MiniLM-L6-v2 to ONNX with pooling + normalisation in the graph.

NOT imported by the workbench. `provision.py` runs this file with the python of a throwaway
virtualenv that holds torch (CPU), transformers and onnx/onnxscript; nothing here may import
`mmos_core`. Two modes:

    python export_onnx.py export SRC_DIR OUT.onnx
        SRC_DIR holds the sentence-transformers folder (config.json + model.safetensors).
        Writes a single-file ONNX model:
          inputs  input_ids       int64 [batch, sequence]
                  attention_mask  int64 [batch, sequence]
          output  sentence_embedding float32 [batch, 384]
        The output is mean pooling of the last hidden state over the attention mask followed by
        L2 normalisation -- exactly the maths of sentence-transformers' Pooling(mean) + Normalize
        modules for this model.

    python export_onnx.py reference SRC_DIR TEXTS.json OUT.json
        Embeds the texts (a JSON list of strings) with sentence-transformers when it is installed,
        else with transformers AutoModel + the same pooling maths, one sentence at a time, max 256
        tokens, and writes {"embeddings": [[...384 floats...], ...], "method": "..."}.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch


class _SentenceEmbedding(torch.nn.Module):
    def __init__(self, bert: torch.nn.Module) -> None:
        super().__init__()
        self.bert = bert

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        summed = (hidden * mask).sum(dim=1)
        counts = mask.sum(dim=1).clamp(min=1e-9)
        return torch.nn.functional.normalize(summed / counts, p=2, dim=1)


def _load(src: Path) -> torch.nn.Module:
    from transformers import AutoModel

    bert = AutoModel.from_pretrained(str(src), local_files_only=True)
    bert.eval()
    return _SentenceEmbedding(bert).eval()


def export(src: Path, out: Path) -> None:
    """Export with the TorchScript exporter (measured 10-20 % faster in onnxruntime than the dynamo
    export of the same model on 2 CPU cores; same outputs to cosine 0.999999); fall back to dynamo."""
    model = _load(src)
    ids = torch.tensor([[101, 7592, 2088, 2003, 1037, 3231, 102], [101, 7592, 102, 0, 0, 0, 0]], dtype=torch.long)
    mask = (ids != 0).long()
    names = {"input_names": ["input_ids", "attention_mask"], "output_names": ["sentence_embedding"]}
    try:
        with torch.no_grad():
            torch.onnx.export(
                model,
                (ids, mask),
                str(out),
                dynamic_axes={
                    "input_ids": {0: "batch", 1: "sequence"},
                    "attention_mask": {0: "batch", 1: "sequence"},
                    "sentence_embedding": {0: "batch"},
                },
                opset_version=17,
                dynamo=False,
                **names,
            )
        exporter = "torchscript, opset 17"
    except Exception as e:  # the TorchScript exporter is deprecated in recent torch releases
        print(f"TorchScript export failed ({e}); using the dynamo exporter", flush=True)
        batch = torch.export.Dim("batch", min=1)
        seq = torch.export.Dim("sequence", min=1, max=512)
        with torch.no_grad():
            program = torch.onnx.export(
                model,
                (ids, mask),
                dynamic_shapes={"input_ids": {0: batch, 1: seq}, "attention_mask": {0: batch, 1: seq}},
                opset_version=18,
                dynamo=True,
                external_data=False,
                **names,
            )
        program.save(str(out), external_data=False)
        exporter = "dynamo, opset 18"
    print(f"exported {out} ({out.stat().st_size:,} bytes)", flush=True)
    print(f"EXPORTER={exporter}", flush=True)


def reference(src: Path, texts_path: Path, out: Path) -> None:
    texts = json.loads(texts_path.read_text(encoding="utf-8"))
    try:
        from sentence_transformers import SentenceTransformer
        from sentence_transformers import __version__ as st_version
    except ImportError:
        SentenceTransformer = None
    rows: list[list[float]] = []
    if SentenceTransformer is not None:
        st = SentenceTransformer(str(src), device="cpu", local_files_only=True)
        assert st.max_seq_length == 256, st.max_seq_length
        for t in texts:
            rows.append(st.encode([t], normalize_embeddings=False, convert_to_numpy=True)[0].tolist())
        method = f"sentence-transformers {st_version} (torch {torch.__version__}), one sentence per call"
    else:
        from transformers import AutoTokenizer
        from transformers import __version__ as tf_version

        tok = AutoTokenizer.from_pretrained(str(src), local_files_only=True)
        model = _load(src)
        with torch.no_grad():
            for t in texts:
                enc = tok([t], truncation=True, max_length=256, return_tensors="pt")
                rows.append(model(enc["input_ids"], enc["attention_mask"])[0].tolist())
        method = (
            f"transformers {tf_version} AutoModel + mean pooling + L2 norm (torch {torch.__version__}), "
            "max_length 256, one sentence per call"
        )
    out.write_text(json.dumps({"method": method, "embeddings": rows}), encoding="utf-8")
    print(f"wrote {len(rows)} reference embeddings ({method})", flush=True)


def main(argv: list[str]) -> int:
    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    if len(argv) == 3 and argv[0] == "export":
        export(Path(argv[1]), Path(argv[2]))
    elif len(argv) == 4 and argv[0] == "reference":
        reference(Path(argv[1]), Path(argv[2]), Path(argv[3]))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
