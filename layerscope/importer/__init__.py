"""Importer stage: a Python nn.Module → a spec in layerscope's language (`layerscope import`), the
inverse of builder/to_python.py.

walk.py reads the forward with torch.fx, one container at a time, on a meta copy of the model;
arguments.py reads a torch.nn layer's constructor arguments off its attributes; functional.py maps
function calls to the spec's functional ops; fold.py names the layers as the spec will and makes
blocks of the user's classes and `repeat:` of their stacks; document.py writes the YAML and checks
it by building it again. It sits above builder/ (it builds its output to check it) and beside render/.
"""
