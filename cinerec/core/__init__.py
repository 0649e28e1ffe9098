"""Pure logic shared by every component: settings, the event contract, privacy rules, datasets,
fold-in, metrics, the model artifact. The lowest floor: imports no engine and no other project
package (tests/test_imports.py); the outside systems' clients are ``cinerec.platform``'s.
"""
