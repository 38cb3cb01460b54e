"""Run stage: any nn.Module + inputs → one traced forward (trace), with FLOPs counted per aten op
(counting) on the device chosen by size (devices); records holds the plain data it yields. Knows nothing of specs or of how results are shown.
"""
