"""Import a skill's code and call its entrypoint once, as the behaviour probe does (stdlib only).

argv: the code file, the entrypoint's name. Required parameters get a placeholder string, so code past
the argument check runs too; the return value and any error are printed (the canary check reads them).
"""
import importlib.util
import sys

PLACEHOLDER = "skillharbor-probe"


def _call(func):
    code = getattr(func, "__code__", None)
    if code is None:
        return func()
    names = code.co_varnames[: code.co_argcount + code.co_kwonlyargcount]
    defaults = len(func.__defaults__ or ())
    required = names[: code.co_argcount - defaults] + tuple(n for n in names[code.co_argcount:] if n not in (func.__kwdefaults__ or {}))
    return func(**{name: PLACEHOLDER for name in required})


def main(path, entrypoint):
    sys.path.insert(0, sys.argv[1].rsplit("/", 1)[0])
    spec = importlib.util.spec_from_file_location("skill_main", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["skill_main"] = module
    spec.loader.exec_module(module)
    func = getattr(module, entrypoint, None)
    if callable(func):
        value = _call(func)
        if hasattr(value, "__await__"):
            import asyncio

            value = asyncio.run(value)
        print(repr(value)[:4096])


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
