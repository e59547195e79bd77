"""The app on top of the library: the ``minigrad`` command and what it runs.

- ``cli``: the ``minigrad`` console script and ``python -m minigrad`` (subcommands).
- ``train`` (+ ``train_options``, ``train_data``, ``train_eval``, ``train_files``): the
  training loop, its options, data, evaluation/report and checkpoint files.
- ``tools/``: ``minigrad info``, ``minigrad bench``, ``minigrad data``.
- ``examples/``: the trained sequence examples (``minigrad train --task reverse|charlm``).

The library (everything else in ``minigrad/``) never imports this package; models stay in
:mod:`minigrad.models`. ``import minigrad`` does not import it.
"""
