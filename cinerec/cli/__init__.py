"""The `cinerec` command line: parses arguments, calls a component, prints the result.

    main.py      the parser, settings, exit codes          run.py      config, services, stream, serve,
    data.py      data …, simulate, replay, events count                 demo, kibana
    models.py    train, evaluate, tune, promote, index,    canary.py   canary …, online, retrain
                 rollback, report                          privacy.py  privacy …
    bench.py     every `bench …` (``ops/bench.py`` runs them)
The top floor; imports no engine (tests/test_imports.py): the packages below assemble.
"""
