"""The linear baseline of tutorial 3 (examples/review_sentiment): TF-IDF of character 1-3-grams +
logistic regression (scikit-learn), on the same train/test files. A neural model should be judged
beside it: on short reviews a bag of character n-grams is strong.

  /usr/bin/python3 bench/peers/tfidf_baseline.py ../shared/data/douban_reviews
  /usr/bin/python3 bench/peers/tfidf_baseline.py ../shared/data/chnsenticorp [--C 4] [--max-features 0]

Prints the test accuracy, the number of features and the seconds taken. Needs Debian's
python3-sklearn (scripts/install_deps.sh --peers).
"""
import argparse
import json
import os
import time

from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression


def read(path):
    texts, labels = [], []
    with open(path, encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            texts.append(row["content"])
            labels.append(int(row["label"]))
    return texts, labels


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", help="folder with train.jsonl and test.jsonl")
    ap.add_argument("--C", type=float, default=4.0, help="inverse regularisation strength")
    ap.add_argument("--max-features", type=int, default=0, help="keep the most frequent n-grams (0: all)")
    a = ap.parse_args()
    t0 = time.time()
    train_x, train_y = read(os.path.join(a.data, "train.jsonl"))
    test_x, test_y = read(os.path.join(a.data, "test.jsonl"))
    vec = TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True, min_df=2,
                          max_features=a.max_features or None)
    xtr = vec.fit_transform(train_x)
    xte = vec.transform(test_x)
    clf = LogisticRegression(C=a.C, max_iter=2000)
    clf.fit(xtr, train_y)
    acc = (clf.predict(xte) == test_y).mean()
    print(f"{os.path.basename(os.path.normpath(a.data))}: TF-IDF char 1-3-grams + logistic regression (C={a.C}): "
          f"test accuracy {acc:.4f} on {len(test_y)} texts; {xtr.shape[1]} features; {time.time() - t0:.1f} s")


if __name__ == "__main__":
    main()
