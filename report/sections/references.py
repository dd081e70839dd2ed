"""The works the paper cites, `cite()` for the text, and the References section."""

from __future__ import annotations

from ..doc import Doc

REFERENCES = (
    ("keras", "Keras documentation. <i>Keras Applications</i>. https://keras.io/api/applications/"),
    ("kornblith", "S. Kornblith, J. Shlens, Q. V. Le. <i>Do Better ImageNet Models Transfer Better?</i> "
                  "CVPR 2019."),
    ("mcnemar", "Q. McNemar. <i>Note on the sampling error of the difference between correlated proportions or "
                "percentages.</i> Psychometrika, 1947."),
    ("bootstrap", "B. Efron, R. J. Tibshirani. <i>An Introduction to the Bootstrap.</i> Chapman &amp; Hall, 1993."),
    ("wilson", "E. B. Wilson. <i>Probable inference, the law of succession, and statistical inference.</i> "
               "Journal of the American Statistical Association, 1927."),
    ("logme", "K. You, Y. Liu, J. Wang, M. Long. <i>LogME: Practical Assessment of Pre-trained Models for "
              "Transfer Learning.</i> ICML 2021."),
    ("hscore", "Y. Bao, Y. Li, S.-L. Huang, L. Zhang, L. Zheng, A. Zamir, L. Guibas. <i>An Information-Theoretic "
               "Approach to Transferability in Task Transfer Learning.</i> ICIP 2019; with the shrunk covariance "
               "of S. Ibrahim, N. Ponomareva, R. Mazumder, <i>Newer is Not Always Better: Rethinking "
               "Transferability Metrics, Their Peculiarities, Stability and Performance</i>, arXiv:2110.06893, 2021."),
    ("vigna", "S. Vigna. <i>A Weighted Correlation Index for Rankings with Ties.</i> WWW 2015."),
    ("cifar", "A. Krizhevsky. <i>Learning Multiple Layers of Features from Tiny Images.</i> Technical report, "
              "University of Toronto, 2009."),
)
CIFAR10_ONLY = ("cifar",)  # last, so that leaving them out of another dataset's page renumbers nothing
CITE = {key: i for i, (key, _) in enumerate(REFERENCES, 1)}


def cite(*keys: str) -> str:
    return "[" + ", ".join(str(CITE[k]) for k in keys) + "]"


def references(doc: Doc) -> str:
    cited = [text for key, text in REFERENCES if doc.is_cifar10 or key not in CIFAR10_ONLY]
    return "\n".join(["<h2>References</h2><ol>", *[f"<li>{text}</li>" for text in cited], "</ol>"])
