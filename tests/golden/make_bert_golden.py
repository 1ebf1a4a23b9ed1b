#!/usr/bin/python3
"""Tiny Hugging Face-layout BERT checkpoints and reference values for tests/test_bert.cpp.

Debian has neither `transformers` nor `safetensors`, so this script writes Hugging Face's BERT
(transformers 4.x modeling_bert.py: absolute positions, post-norm, exact-erf gelu, the extended
attention mask (1 - mask) * torch.finfo(dtype).min, the pooler, the classification and masked-LM
heads with the decoder tied to the word embeddings) in plain PyTorch 1.13 with the same module
names, so state_dict keys are Hugging Face's, and writes model.safetensors by hand
(safetensors_interop.write: 8-byte header length, JSON header, raw little-endian data).

  /usr/bin/python3 tests/golden/make_bert_golden.py
      writes tests/golden/bert/{tiny_cls,tiny_mlm,tiny_mlm_legacy}/{config.json,model.safetensors}
      and tests/golden/bert/bert.json (inputs, logits, loss and some gradients in eval mode,
      computed in float64 from the stored float32 weights)
  /usr/bin/python3 tests/golden/make_bert_golden.py check DIR KIND [DIR KIND ...]
      reads a folder Ember's save_pretrained wrote (KIND = cls or mlm) with an independent
      reader, loads it into the PyTorch model (missing keys: only the tied ones) and checks its
      logits on the golden inputs against bert.json; exit status 0 on success

tiny_mlm_legacy holds tiny_mlm's weights under the older spellings transformers has written:
LayerNorm gamma/beta, cls.predictions.decoder.bias instead of cls.predictions.bias, a stored
cls.predictions.decoder.weight and the bert.embeddings.position_ids buffer.
"""
import json
import math
import os
import sys

import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_interop as st  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "bert")

CONFIG = {
    "architectures": None,
    "attention_probs_dropout_prob": 0.1,
    "classifier_dropout": None,
    "hidden_act": "gelu",
    "hidden_dropout_prob": 0.1,
    "hidden_size": 16,
    "id2label": {"0": "LABEL_0", "1": "LABEL_1", "2": "LABEL_2"},
    "initializer_range": 0.02,
    "intermediate_size": 32,
    "label2id": {"LABEL_0": 0, "LABEL_1": 1, "LABEL_2": 2},
    "layer_norm_eps": 1e-12,
    "max_position_embeddings": 20,
    "model_type": "bert",
    "num_attention_heads": 2,
    "num_hidden_layers": 2,
    "pad_token_id": 0,
    "position_embedding_type": "absolute",
    "type_vocab_size": 2,
    "vocab_size": 50,
}


class Cfg:
    def __init__(self, d):
        self.__dict__.update(d)
        self.num_labels = len(d.get("id2label") or {"0": 0, "1": 1})


ACT = {"gelu": lambda x: nn.functional.gelu(x), "relu": torch.relu,
       "gelu_new": lambda x: nn.functional.gelu(x, approximate="tanh")}


class BertEmbeddings(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.word_embeddings = nn.Embedding(c.vocab_size, c.hidden_size, padding_idx=c.pad_token_id)
        self.position_embeddings = nn.Embedding(c.max_position_embeddings, c.hidden_size)
        self.token_type_embeddings = nn.Embedding(c.type_vocab_size, c.hidden_size)
        self.LayerNorm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        self.dropout = nn.Dropout(c.hidden_dropout_prob)

    def forward(self, ids, types):
        pos = torch.arange(ids.shape[1]).unsqueeze(0)
        if types is None:
            types = torch.zeros_like(ids)
        x = self.word_embeddings(ids) + self.token_type_embeddings(types) + self.position_embeddings(pos)
        return self.dropout(self.LayerNorm(x))


class BertSelfAttention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.h, self.d = c.num_attention_heads, c.hidden_size // c.num_attention_heads
        self.query = nn.Linear(c.hidden_size, c.hidden_size)
        self.key = nn.Linear(c.hidden_size, c.hidden_size)
        self.value = nn.Linear(c.hidden_size, c.hidden_size)
        self.dropout = nn.Dropout(c.attention_probs_dropout_prob)

    def split(self, x):
        b, l, _ = x.shape
        return x.view(b, l, self.h, self.d).permute(0, 2, 1, 3)

    def forward(self, x, ext_mask):
        q, k, v = self.split(self.query(x)), self.split(self.key(x)), self.split(self.value(x))
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.d)
        if ext_mask is not None:
            scores = scores + ext_mask
        probs = self.dropout(torch.softmax(scores, dim=-1))
        ctx = (probs @ v).permute(0, 2, 1, 3).contiguous()
        return ctx.view(ctx.shape[0], ctx.shape[1], -1)


class BertResidual(nn.Module):  # BertSelfOutput and BertOutput
    def __init__(self, c, fin):
        super().__init__()
        self.dense = nn.Linear(fin, c.hidden_size)
        self.LayerNorm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        self.dropout = nn.Dropout(c.hidden_dropout_prob)

    def forward(self, h, res):
        return self.LayerNorm(self.dropout(self.dense(h)) + res)


class BertAttention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.self = BertSelfAttention(c)
        self.output = BertResidual(c, c.hidden_size)

    def forward(self, x, m):
        return self.output(self.self(x, m), x)


class BertIntermediate(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dense = nn.Linear(c.hidden_size, c.intermediate_size)
        self.act = ACT[c.hidden_act]

    def forward(self, x):
        return self.act(self.dense(x))


class BertLayer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.attention = BertAttention(c)
        self.intermediate = BertIntermediate(c)
        self.output = BertResidual(c, c.intermediate_size)

    def forward(self, x, m):
        a = self.attention(x, m)
        return self.output(self.intermediate(a), a)


class BertEncoder(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.layer = nn.ModuleList([BertLayer(c) for _ in range(c.num_hidden_layers)])

    def forward(self, x, m):
        for l in self.layer:
            x = l(x, m)
        return x


class BertPooler(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dense = nn.Linear(c.hidden_size, c.hidden_size)

    def forward(self, h):
        return torch.tanh(self.dense(h[:, 0]))


class BertModel(nn.Module):
    def __init__(self, c, pool=True):
        super().__init__()
        self.embeddings = BertEmbeddings(c)
        self.encoder = BertEncoder(c)
        self.pooler = BertPooler(c) if pool else None

    def forward(self, ids, mask=None, types=None):
        x = self.embeddings(ids, types)
        ext = None
        if mask is not None:
            ext = (1.0 - mask[:, None, None, :].to(x.dtype)) * torch.finfo(x.dtype).min
        h = self.encoder(x, ext)
        return h, (self.pooler(h) if self.pooler is not None else None)


class BertForSequenceClassification(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.bert = BertModel(c)
        self.dropout = nn.Dropout(c.hidden_dropout_prob)
        self.classifier = nn.Linear(c.hidden_size, c.num_labels)

    def forward(self, ids, mask, types, labels=None):
        logits = self.classifier(self.dropout(self.bert(ids, mask, types)[1]))
        loss = nn.functional.cross_entropy(logits, labels) if labels is not None else None
        return logits, loss


class BertPredictionHeadTransform(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dense = nn.Linear(c.hidden_size, c.hidden_size)
        self.act = ACT[c.hidden_act]
        self.LayerNorm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)

    def forward(self, x):
        return self.LayerNorm(self.act(self.dense(x)))


class BertLMPredictionHead(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.transform = BertPredictionHeadTransform(c)
        self.decoder = nn.Linear(c.hidden_size, c.vocab_size, bias=False)
        self.bias = nn.Parameter(torch.zeros(c.vocab_size))
        self.decoder.bias = self.bias

    def forward(self, h):
        return self.decoder(self.transform(h))


class BertOnlyMLMHead(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.predictions = BertLMPredictionHead(c)


class BertForMaskedLM(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.bert = BertModel(c, pool=False)
        self.cls = BertOnlyMLMHead(c)
        self.cls.predictions.decoder.weight = self.bert.embeddings.word_embeddings.weight  # tie_weights()

    def forward(self, ids, mask, types, labels=None):
        logits = self.cls.predictions(self.bert(ids, mask, types)[0])
        loss = None
        if labels is not None:
            loss = nn.functional.cross_entropy(logits.view(-1, logits.shape[-1]), labels.view(-1))
        return logits, loss


def randomize(m):
    """Values far from the trivial init, so every parameter matters; float32-representable."""
    with torch.no_grad():
        for name, p in m.named_parameters():
            if name.endswith("LayerNorm.weight"):
                p.copy_(1.0 + 0.2 * torch.randn(p.shape))
            elif name.endswith("bias"):
                p.copy_(0.2 * torch.randn(p.shape))
            else:
                p.copy_(0.5 * torch.randn(p.shape))
        m.bert.embeddings.word_embeddings.weight[0].zero_()  # the padding row, as HF initialises it
    m.float()


def enc(t):
    t = t.detach()
    if t.is_floating_point():
        return {"shape": list(t.shape), "dtype": "float64", "data": [float(v) for v in t.reshape(-1).tolist()]}
    return {"shape": list(t.shape), "dtype": "int64", "data": [int(v) for v in t.reshape(-1).tolist()]}


INPUT_IDS = torch.tensor([[2, 11, 23, 5, 41, 3, 0], [2, 7, 3, 0, 0, 0, 0], [2, 49, 1, 17, 3, 30, 3]])
ATTENTION_MASK = (INPUT_IDS != 0).long()
ATTENTION_MASK[2, :] = 1  # a pair without padding
TOKEN_TYPE_IDS = torch.tensor([[0] * 7, [0] * 7, [0, 0, 0, 0, 0, 1, 1]])
CLS_LABELS = torch.tensor([2, 0, 1])
MLM_LABELS = torch.tensor([[-100, 11, -100, -100, 4, -100, -100], [-100, -100, 3, -100, -100, -100, -100],
                           [-100, 49, -100, -100, -100, 30, -100]])
GRAD_KEYS = ["bert.embeddings.word_embeddings.weight", "bert.embeddings.position_embeddings.weight",
             "bert.embeddings.token_type_embeddings.weight", "bert.embeddings.LayerNorm.weight",
             "bert.encoder.layer.0.attention.self.query.weight", "bert.encoder.layer.0.attention.self.value.bias",
             "bert.encoder.layer.1.intermediate.dense.weight", "bert.encoder.layer.1.output.LayerNorm.bias"]


def run_case(model, labels, extra_grads):
    """Forward/backward in float64 (eval mode) on a copy of the float32 model."""
    m64 = type(model)(Cfg(CONFIG))
    m64.load_state_dict(model.state_dict())
    if isinstance(m64, BertForMaskedLM):  # load_state_dict copies values; keep the tie
        m64.cls.predictions.decoder.weight = m64.bert.embeddings.word_embeddings.weight
    m64.double().eval()
    logits, loss = m64(INPUT_IDS, ATTENTION_MASK, TOKEN_TYPE_IDS, labels)
    loss.backward()
    params = dict(m64.named_parameters())
    return {"logits": enc(logits), "loss": float(loss),
            "grads": {k: enc(params[k].grad) for k in GRAD_KEYS + extra_grads}}


def state_for_file(model, drop):
    return {k: v.detach().clone().contiguous() for k, v in model.state_dict().items() if k not in drop}


def write_folder(name, tensors, arch):
    d = os.path.join(OUT, name)
    os.makedirs(d, exist_ok=True)
    cfg = dict(CONFIG, architectures=[arch])
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")
    st.write(os.path.join(d, "model.safetensors"), tensors, {"format": "pt"})


def generate():
    torch.manual_seed(20240609)
    cfg = Cfg(CONFIG)
    cls = BertForSequenceClassification(cfg)
    randomize(cls)
    mlm = BertForMaskedLM(cfg)
    randomize(mlm)
    with torch.no_grad():
        mlm.cls.predictions.bias.copy_(0.2 * torch.randn(cfg.vocab_size))

    write_folder("tiny_cls", state_for_file(cls, set()), "BertForSequenceClassification")
    # transformers' safetensors writer drops the tied copies.
    write_folder("tiny_mlm", state_for_file(mlm, {"cls.predictions.decoder.weight", "cls.predictions.decoder.bias"}),
                 "BertForMaskedLM")
    legacy = {}
    for k, v in mlm.state_dict().items():
        if k == "cls.predictions.bias":
            continue  # only the decoder.bias spelling
        k = k.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta")
        legacy[k] = v.detach().clone().contiguous()
    legacy["bert.embeddings.position_ids"] = torch.arange(CONFIG["max_position_embeddings"]).unsqueeze(0)
    write_folder("tiny_mlm_legacy", legacy, "BertForMaskedLM")

    golden = {
        "config": CONFIG,
        "input_ids": enc(INPUT_IDS), "attention_mask": enc(ATTENTION_MASK), "token_type_ids": enc(TOKEN_TYPE_IDS),
        "cls_labels": enc(CLS_LABELS), "mlm_labels": enc(MLM_LABELS),
        "cls": run_case(cls, CLS_LABELS, ["bert.pooler.dense.weight", "classifier.weight", "classifier.bias"]),
        "mlm": run_case(mlm, MLM_LABELS, ["cls.predictions.bias", "cls.predictions.transform.dense.weight",
                                          "cls.predictions.transform.LayerNorm.weight"]),
    }
    with open(os.path.join(OUT, "bert.json"), "w") as f:
        json.dump(golden, f)
    print("wrote", OUT)


def check(d, kind):
    tensors, metadata = st.read(os.path.join(d, "model.safetensors"))
    assert metadata.get("format") == "pt", f"metadata {metadata} lacks format=pt (transformers would refuse it)"
    with open(os.path.join(d, "config.json")) as f:
        cfg = json.load(f)
    model = (BertForSequenceClassification if kind == "cls" else BertForMaskedLM)(Cfg(cfg))
    missing, unexpected = model.load_state_dict({k: v.float() for k, v in tensors.items()}, strict=False)
    allowed = {"cls.predictions.decoder.weight", "cls.predictions.decoder.bias"}
    assert not unexpected, f"unexpected keys {unexpected}"
    assert set(missing) <= allowed, f"missing keys {missing}"
    if kind == "mlm":
        model.cls.predictions.decoder.weight = model.bert.embeddings.word_embeddings.weight
        model.cls.predictions.decoder.bias = model.cls.predictions.bias
    model.double().eval()
    with open(os.path.join(OUT, "bert.json")) as f:
        golden = json.load(f)
    logits, _ = model(INPUT_IDS, ATTENTION_MASK, TOKEN_TYPE_IDS)
    want = torch.tensor(golden[kind]["logits"]["data"], dtype=torch.float64).view(logits.shape)
    err = (logits - want).abs().max().item()
    print(f"{d}: {len(tensors)} tensors, max |logit - golden| = {err:.3g}")
    return err < 1e-4


if __name__ == "__main__":
    if len(sys.argv) >= 4 and len(sys.argv) % 2 == 0 and sys.argv[1] == "check":
        pairs = list(zip(sys.argv[2::2], sys.argv[3::2]))
        sys.exit(0 if all([check(d, k) for d, k in pairs]) else 1)
    if len(sys.argv) == 1:
        generate()
        sys.exit(0)
    print(__doc__)
    sys.exit(2)
