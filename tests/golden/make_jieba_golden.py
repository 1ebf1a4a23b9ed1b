#!/usr/bin/python3
"""Goldens for ember::text (tests/test_segmenter.cpp, tests/test_text.cpp): what Debian's
python3-jieba 0.42 and Python 3 itself say about a fixed set of texts.

Run with Debian's python3 (the `python3` first on PATH may lack jieba):
    /usr/bin/python3 tests/golden/make_jieba_golden.py
Reads ../shared/data/douban_reviews/test.jsonl and ../shared/data/chnsenticorp/test.jsonl
(relative to the repository root) and writes tests/golden/jieba/cases.json:
  cut        [{text, tokens}]   jieba.cut(text, HMM=True), whitespace tokens included
  cut_no_hmm [{text, tokens}]   jieba.cut(text, HMM=False)
  user       {ops, userdict, cases: [{text, tokens}]}   a fresh Tokenizer after add_word/del_word/load_userdict
  digits     [[text, re.sub(r'\\d+', '', text)]]
  utf8       [[hex bytes, [code points of bytes.decode('utf-8', 'replace')]]]
The selection is deterministic (every k-th line, fixed seeds), so a rerun gives the same file.
"""
import io
import json
import logging
import os
import random
import re

import jieba

jieba.setLogLevel(logging.WARNING)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA = os.path.join(ROOT, "..", "shared", "data")
OUT = os.path.join(ROOT, "tests", "golden", "jieba")


def contents(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line)["content"] for line in f if line.strip()]


douban = contents(os.path.join(DATA, "douban_reviews", "test.jsonl"))
senti = contents(os.path.join(DATA, "chnsenticorp", "test.jsonl"))
texts = douban[::65][:110]
texts += [t for t in senti if len(t) <= 160][::20][:50]

rng = random.Random(20240601)
common = "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而方后多定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点从业本去把性好应开它合还因由其些然前外天政四日那社义事平形相全表间样与关各重新线内数正心反你明看原又么利比或但质气第向道命此变条只没结解问意建月公无系军很情者最立代想已通并提直题党程展五果料象员革位入常文总次品式活设及管特件长求老头基资边流路级少图山统接知较将组见计别她手角期根论运农指几九区强放决西被干做必战先回则任取据处队南给色光门即保治北造百规热领七海口东导器压志世金增争济阶油思术极交受联什认六共权收证改清己美再采转更单风切打白教速花带安场身车例真务具万每目至达走积示议声报斗完类八离华名确才科张信马节话米整空元况今集温传土许步群广石记需段研界拉林律叫且究观越织装影算低持音众书布复容儿须际商非验连断深难近矿千周委素技备半办青省列习响约支般史感劳便团往酸历市克何除消构府称太准精值号率族维划选标写存候毛亲快效斯院查江型眼王按格养易置派层片始却专状育厂京识适属圆包火住调满县局照参红细引听该铁价严"
long_unknown = "".join(rng.choice(common) for _ in range(400))
edge = [
    "",
    " ",
    "   ",
    "\r\n",
    "\r\r\n\n",
    "第一行\r\n第二行\n\t第三行  \u3000全角空格\x0b\x0c结束",
    "Hello World! 这是test123和3.14%的C++代码, e-mail: a_b@c.com",
    "iPhone12ProMax价格是8999元，打折后7.5折，涨幅50%，版本1.5.3和v2.0.1",
    "C#和.NET以及node.js还有a+b=c，100%好看，R&B音乐，__init__，--help",
    "abc.123.456xyz 1.2.3 .5 5. 50%% %50 a.b.c",
    "我爱北京天安门😀🎉表情包👨\u200d👩\u200d👧一家人",
    "你好，世界！（全角）【测试】“引号”《书名》……——～",
    "這部電影真的太好看了，強烈推薦給大家，劇情緊湊，演員演技精湛",
    "１２３电影４５６ＡＢＣ全角字母ｘｙｚ",
    "2019年10月1日国庆节，共70周年",
    "\ufeff开头有BOM",
    "替换字符\ufffd在这里",
    "a\x00b中文\x00",
    "こんにちは世界안녕하세요Привет",
    "㐀㐁㐂扩展A区字符与\U00020000扩展B",
    "\u9fa6\u9fb0\u9fc0\u9fd0\u9fd5\u9fd6连续的新字",
    "龘靐齉爩麤灥龖厵",
    long_unknown,
    "哈哈哈哈哈哈哈哈哈哈哈哈哈哈哈哈哈哈哈哈哈哈哈哈哈哈",
    "好好好好好好好好好好好好好好好好好好好好好好好好好好好好好好好好",
    "！！！！！？？？。。。，，，",
    "蚁人2和复仇者联盟3：无限战争，漫威MCU第3阶段",
    "王尼玛和张全蛋在B站看了一部叫做《大圣归来》的国产动画",
    "不明觉厉，喜大普奔，累觉不爱，人艰不拆",
    "结婚的和尚未结婚的",
    "他说的确实在理",
    "工信处女干事每月经过下属科室都要亲口交代24口交换机等技术性器件的安装工作",
    "http://movie.douban.com/subject/1292052/ 肖申克的救赎",
    "#标签# @用户名 &amp; 100_000 a-b-c --- ...",
]
texts += edge

cut = [{"text": t, "tokens": list(jieba.cut(t, HMM=True))} for t in texts]
no_hmm_texts = douban[7::400][:12] + edge[5:14]
cut_no_hmm = [{"text": t, "tokens": list(jieba.cut(t, HMM=False))} for t in no_hmm_texts]

digits_texts = ["abc123def", "１２３电影４５６", "٣٤٥阿拉伯数字", "²³①〇不是Nd", "𝟘𝟙𝟚数学数字", "2019年10月1日", "", "没有数字", "1.5元"]
digits = [[t, re.sub(r"\d+", "", t)] for t in digits_texts]

utf8_bytes = [
    b"", b"abc", "电影".encode(), b"\xff", b"\x80", b"\xc0\xaf", b"\xc1\xbf", b"\xe0\x80\xaf",
    b"\xed\xa0\x80", b"\xed\xbf\xbf", b"\xf4\x90\x80\x80", b"\xf5\x80\x80\x80", b"\xe7\x94", b"\xe7\x94a",
    b"\xf0\x9f\x98", b"\xf0\x9f\x98\x80", b"\xf0\x80\x80", b"a\xe7\x94\xb5\xff\xe5", b"\xc2", b"\xc2\xa0",
    b"\xef\xbf\xbd", b"\xf4\x8f\xbf\xbf", b"\xe0\xa0\x80", b"\xe0\x9f\xbf", b"\xfe\xff", b"\x00\x7f",
]
utf8 = [[b.hex(), [ord(c) for c in b.decode("utf-8", "replace")]] for b in utf8_bytes]

# A fresh tokenizer with a user dictionary. add_word(w, 0) also fills finalseg's global
# Force_Split_Words, so this runs after every other case.
user_ops = [["add", "强烈推荐", None], ["add", "好看了", 50000], ["del", "电影", None], ["add", "大圣归来", 10],
            ["add", "复仇者联盟", None]]
userdict = "蚁人2 30 nz\n漫威 电影宇宙 5\n\n  王尼玛  \nB站 100\nnew york 3 ns\n"
tok = jieba.Tokenizer()
for op, w, f in user_ops:
    if op == "add":
        tok.add_word(w, f)
    else:
        tok.del_word(w)
tok.load_userdict(io.BytesIO(userdict.encode("utf-8")))
user_texts = ["这部电影太好看了，强烈推荐！", "蚁人2和复仇者联盟3", "王尼玛在B站看了大圣归来", "漫威电影宇宙很大",
              "new york是个城市", "电影院里看电影"] + douban[3::900][:6]
user = {"ops": user_ops, "userdict": userdict,
        "cases": [{"text": t, "tokens": list(tok.cut(t, HMM=True))} for t in user_texts]}

os.makedirs(OUT, exist_ok=True)
path = os.path.join(OUT, "cases.json")
with open(path, "w", encoding="utf-8") as f:
    f.write("{\n")
    f.write('"jieba_version": %s,\n' % json.dumps(jieba.__version__))
    for name, rows in [("cut", cut), ("cut_no_hmm", cut_no_hmm), ("digits", digits), ("utf8", utf8)]:
        f.write('"%s": [\n' % name)
        f.write(",\n".join(json.dumps(r, ensure_ascii=False) for r in rows))
        f.write("\n],\n")
    f.write('"user": %s\n}\n' % json.dumps(user, ensure_ascii=False))
print("wrote", path, os.path.getsize(path), "bytes,", len(cut), "cut cases")
