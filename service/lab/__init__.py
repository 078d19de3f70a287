"""The lab: how well and how fast the service works, measured (the core never imports it).

- ``evaluate`` and ``report``: the evaluation on question and claim sets, and its report
  (``citeqa eval``);
- ``bench``, ``bench_report`` and ``stores``: the benchmark suite and its report, and the
  vector stores side by side (``citeqa bench``);
- ``load`` and ``locustfile``: load and soak with locust (``citeqa load``);
- ``scale``: synthetic corpora of N chunks (``python -m service.lab.scale``);
- ``processes`` and ``stats``: what those share: a server in a child process, process-tree
  memory and CPU, fresh interpreters; percentiles;
- ``commands``: the bodies of ``citeqa eval``, ``bench`` and ``load``; ``render``: the
  measured reports rewritten from their JSON (``make reports``).

The generated reports live in ``eval/reports/``. matplotlib and locust are the ``lab`` extra,
imported only where a chart is drawn or a load generated.
"""
