// The Python interpreter that every test and benchmark runs (PyTorch, torchvision, onnx and numpy
// as references), named in this one place. MOCO_PYTHON overrides it (e.g. a virtualenv with
// another torch); the default is Debian's /usr/bin/python3, which python3-torch installs into:
// the `python3` first on PATH may be another one, without torch.
export const PYTHON: string = process.env["MOCO_PYTHON"] || "/usr/bin/python3";
