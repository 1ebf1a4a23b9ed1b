"""Fits P(t) in erfc(z) = t * exp(-z^2 + P(t)), t = 1 / (1 + z / 2), z in [0, 10.5]: the
coefficients of erfc_vec in include/ember/ops/erfc_vec.hpp (float32 GELU kernels).

Least squares in the Chebyshev basis on a dense grid, converted to powers of t (Horner in double);
prints the max error of P, which is the relative error of erfc before rounding to float.
Run: /usr/bin/python3 tests/golden/gelu/fit_erfc.py
"""
import math

import numpy as np

Z, DEG = 10.5, 12
z = np.linspace(0.0, Z, 400001)
t = 1.0 / (1.0 + 0.5 * z)
y = np.array([math.log(math.erfc(v)) for v in z]) + z * z - np.log(t)
tmin = 1.0 / (1.0 + 0.5 * Z)
u = (2 * t - (1 + tmin)) / (1 - tmin)
cheb = np.polynomial.chebyshev.chebfit(u, y, DEG)
coef = np.polynomial.Chebyshev(cheb, domain=[tmin, 1]).convert(kind=np.polynomial.Polynomial).coef
print("max |P - target| =", np.max(np.abs(np.polynomial.polynomial.polyval(t, coef) - y)))
print("coefficients, highest power first:")
for c in reversed(coef):
    print("%.17g" % c)
