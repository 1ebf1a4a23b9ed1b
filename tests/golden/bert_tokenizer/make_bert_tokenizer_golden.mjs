#!/usr/bin/env node
// Goldens for text::BertTokenizer (tests/test_bert_tokenizer.cpp) from Hugging Face's pure-JS
// tokenizer (npm @huggingface/tokenizers, tokenizers.js 0.2.0), fed the tokenizer.json that
// transformers' BertConverter writes for bert-base-chinese: BertNormalizer(clean_text,
// handle_chinese_chars, strip_accents=null, lowercase=do_lower_case), BertPreTokenizer,
// WordPiece([UNK], "##", 100), TemplateProcessing [CLS] $A [SEP] (pair: $B:1 [SEP]:1), the five
// special tokens as added tokens (normalized=false), WordPiece decoder (cleanup=true).
//
//   mkdir -p /tmp/tokjs && (cd /tmp/tokjs && npm install @huggingface/tokenizers@0.2.0)
//   node tests/golden/bert_tokenizer/make_bert_tokenizer_golden.mjs --modules /tmp/tokjs/node_modules
//
// Reads ../shared/data/bert-base-chinese/vocab.txt, ../shared/data/douban_reviews/train.jsonl and
// ../shared/data/chnsenticorp/train.jsonl (relative to the repository root; every k-th line, so
// reruns give the same file) and writes tests/golden/bert_tokenizer/cases.json, one case a line:
//   single [text, "ids"]            do_lower_case=false (bert-base-chinese), [CLS] ... [SEP]
//   lower  [text, "ids"]            the same vocabulary with do_lower_case=true (accents stripped)
//   pairs  [a, b, "ids", "types"]   encode(a, text_pair=b)
//   decode ["ids", skip, text]      decode(ids, skip_special_tokens=skip)
// The hand-written edge cases avoid what tokenizers.js 0.2.0 does differently from Hugging Face's
// Python and Rust tokenizers (see README.md); tests/test_bert_tokenizer.cpp checks those by hand.
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, "..", "..", "..");
const DATA = path.resolve(ROOT, "..", "shared", "data");

const argi = process.argv.indexOf("--modules");
const modules = argi > 0 ? process.argv[argi + 1] : process.env.NODE_MODULES ?? path.join(process.cwd(), "node_modules");
const require = createRequire(path.join(path.resolve(modules), "..", "noop.js"));
const pkgPath = path.join(path.resolve(modules), "@huggingface", "tokenizers", "package.json");
const pkg = JSON.parse(fs.readFileSync(pkgPath, "utf8"));
const { Tokenizer } = require("@huggingface/tokenizers");

const vocabLines = fs.readFileSync(path.join(DATA, "bert-base-chinese", "vocab.txt"), "utf8").split("\n");
if (vocabLines.at(-1) === "") vocabLines.pop();
const SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];

function tokenizerJson(lowercase) {
  const vocab = Object.fromEntries(vocabLines.map((t, i) => [t, i]));
  const id = (t) => vocab[t];
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: SPECIALS.map((t) => ({
      id: id(t), content: t, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true,
    })).sort((a, b) => a.id - b.id),
    normalizer: { type: "BertNormalizer", clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase },
    pre_tokenizer: { type: "BertPreTokenizer" },
    post_processor: {
      type: "TemplateProcessing",
      single: [{ SpecialToken: { id: "[CLS]", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } },
               { SpecialToken: { id: "[SEP]", type_id: 0 } }],
      pair: [{ SpecialToken: { id: "[CLS]", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } },
             { SpecialToken: { id: "[SEP]", type_id: 0 } }, { Sequence: { id: "B", type_id: 1 } },
             { SpecialToken: { id: "[SEP]", type_id: 1 } }],
      special_tokens: {
        "[CLS]": { id: "[CLS]", ids: [id("[CLS]")], tokens: ["[CLS]"] },
        "[SEP]": { id: "[SEP]", ids: [id("[SEP]")], tokens: ["[SEP]"] },
      },
    },
    decoder: { type: "WordPiece", prefix: "##", cleanup: true },
    model: { type: "WordPiece", unk_token: "[UNK]", continuing_subword_prefix: "##", max_input_chars_per_word: 100, vocab },
  };
}
const config = { clean_up_tokenization_spaces: true, do_lower_case: false, model_max_length: 512 };
const cased = new Tokenizer(tokenizerJson(false), config);
const uncased = new Tokenizer(tokenizerJson(true), { ...config, do_lower_case: true });

function everyKth(file, count) {
  const lines = fs.readFileSync(file, "utf8").split("\n").filter((l) => l.trim() !== "");
  const k = Math.max(1, Math.floor(lines.length / count));
  const out = [];
  for (let i = 0; i < lines.length && out.length < count; i += k) out.push(JSON.parse(lines[i]).content);
  return out;
}
const douban = everyKth(path.join(DATA, "douban_reviews", "train.jsonl"), 1600);
const chnsenti = everyKth(path.join(DATA, "chnsenticorp", "train.jsonl"), 400);

const EDGE = [
  "", " ", "\t\n\r ", "。", "a", "A", "[CLS]", "[SEP][SEP]", "[MASK]", "我[MASK]你", "[CLS]你好[SEP]再见",
  "[mask] [Mask] [UNK]x [PAD [unused1] [unused99]", "[[MASK]]", "x[SEP]y",
  "这部电影很好看！", "iPhone 13 Pro Max真的很好用!!!", "I don't like it... 3.5/5分, it's OK", "GOOD电影,Bad ending",
  "You're, we've, I'm, they'll, can't won't", "Hello, world! How are you? Fine.",
  "😀😂👍🏻❤️", "好看😭😭😭", "🇨🇳中国", "👨‍👩‍👧‍👦家庭", "☆★○●◎◇◆□■△▲※→←↑↓",
  "ＡＢＣ１２３！？（）【】「」《》", "，。！？；：“”‘’、…—～·", "ＮＢＡ球星，Ｗｉ－Ｆｉ信号", "１０月１日",
  "naïve café résumé Ångström", "Crème Brûlée à la carte", "ÀÉÎÕÜ àéîõü ÇçÑñ", "e\u0301 a\u0308 o\u0302\u0323",
  "ΟΔΥΣΣΕΥΣ Σ σ ς ΣΑΣ.", "İstanbul ıi", "Straße STRASSE", "ǅemal ǈ ǋ", "Ⅻ ⅻ Ⓐ ⓐ", "ﬁ ﬂ ﬃ",
  "a\u0000b\u0001c\u007fd\u200be\ufefff\ufffdg", "tab\tnew\nline\r\nend", "\u0085x\u000b\u000cy", "zero\u200dwidth\u200cjoin",
  "soft\u00adhyphen", "bidi\u202ehidden\u202c", "priv\ue000ate", "a\u00a0b\u3000c\u2002d\u2028e\u2029f", "你　好",
  "a".repeat(100), "a".repeat(101), "好".repeat(300), "supercalifragilisticexpialidocious",
  "x".repeat(99) + "😀", "ab".repeat(60) + " ok", "抗日神剧" + "哈".repeat(120),
  "3.1415926 1,000,000 2023年12月31日 10:30 50% $100 ¥200 €5", "https://movie.douban.com/subject/1234/?a=b&c=d#x",
  "email: someone@example.com, tel: 138-0013-8000", "C++ C# .NET node.js R2-D2 B2B", "#话题# @用户 ~~~ ^_^ ＞＿＜ (*^▽^*)",
  "これはテストです。カタカナ ﾊﾝｶｸ", "안녕하세요 한국어", "مرحبا بالعالم", "שלום עולם", "สวัสดีครับ", "Привет, мир! ЁЖИК",
  "हिन्दी भाषा", "Ελληνικά", "ﾃｽﾄ", "丶丿乛亅", "㐀㐁㐂", "豈更車", "⺀⺁⻳", "〇一二三", "ㄅㄆㄇ",
  "word-piece ##hash ## #", "UPPER lower MiXeD", "....!!!???", "''\"\"``", "a--b__c", "<html><b>粗体</b></html>",
  "  leading and trailing  ", "多个   空格\t\t和\n\n换行", "ǘǚǜ nǐ hǎo pīnyīn", "Ｈｅｌｌｏ　Ｗｏｒｌｄ",
  "123456789012345678901234567890", "0.5kg/m²", "H₂O x²", "½ ¼ ¾", "™ ® ©", "℃ ℉ №",
];

const enc = (tok, text, pair) => {
  const e = pair === undefined ? tok.encode(text) : tok.encode(text, { text_pair: pair, return_token_type_ids: true });
  return e;
};
const ids = (e) => e.ids.join(" ");

const single = [];
for (const t of [...EDGE, ...douban, ...chnsenti]) single.push([t, ids(enc(cased, t))]);

const lowerTexts = [...EDGE, ...douban.filter((t) => /[A-Za-z\u00C0-\u024F]/.test(t)).slice(0, 100)];
const lower = lowerTexts.map((t) => [t, ids(enc(uncased, t))]);

const pairs = [];
for (let i = 0; i < 40; i += 1) {
  const a = i < 20 ? EDGE[(i * 7) % EDGE.length] : douban[i * 11];
  const b = i < 20 ? EDGE[(i * 13 + 5) % EDGE.length] : chnsenti[i * 5];
  const e = enc(cased, a, b);
  pairs.push([a, b, ids(e), e.token_type_ids.join(" ")]);
}

const decode = [];
const decodeTexts = [...EDGE.filter((t) => t.length > 0), ...douban.slice(0, 50), ...chnsenti.slice(0, 10)];
for (const [i, t] of decodeTexts.entries()) {
  const e = enc(cased, t);
  const skip = i % 2 === 1;
  decode.push([ids(e), skip, cased.decode(e.ids, { skip_special_tokens: skip })]);
}

const q = (v) => JSON.stringify(v);
let out = "{\n";
out += `"generator": ${q(`tests/golden/bert_tokenizer/make_bert_tokenizer_golden.mjs with ${pkg.name} ${pkg.version}, node ${process.version} (Unicode ${process.versions.unicode})`)},\n`;
out += `"vocab": ${q({ file: "bert-base-chinese/vocab.txt", size: vocabLines.length })},\n`;
const section = (name, rows, last) =>
  `${q(name)}: [\n${rows.map(q).join(",\n")}\n]${last ? "" : ","}\n`;
out += section("single", single, false);
out += section("lower", lower, false);
out += section("pairs", pairs, false);
out += section("decode", decode, true);
out += "}\n";
const file = path.join(HERE, "cases.json");
fs.writeFileSync(file, out);
console.log(`wrote ${file}: ${out.length} chars; ${single.length} single (${EDGE.length} edge, ${douban.length} douban, ` +
            `${chnsenti.length} chnsenticorp), ${lower.length} lower, ${pairs.length} pairs, ${decode.length} decode`);
