"""What a mode is: a name, one line of help for run.py, and a function of the config."""


class Mode:
    def __init__(self, name, help, run):
        self.name, self.help, self._run = name, help, run

    def __call__(self, config):
        return self._run(config)

    def __repr__(self):
        return f"Mode({self.name!r})"
