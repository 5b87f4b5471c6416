"""The one base for objects described by a JSON-able config (and rebuilt from it)."""


class Configurable:
    """``get_config()`` gives the constructor's arguments as JSON-able values;
    ``from_config`` rebuilds the object; ``repr`` shows them."""

    def get_config(self) -> dict:
        return {}

    @classmethod
    def from_config(cls, config: dict):
        return cls(**config)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"
