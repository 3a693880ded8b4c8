"""What Synology DSM *is*, as data: the facts the client and the simulator both rely on.

- :mod:`.policy`: the admin form's account rules (server name, user name, password).
- :mod:`.screens`: the first-run wizard's and the desktop's screens, their selectors and texts,
  and the rules of their order.
- :mod:`.webapi`: the Web API catalogue of DSM 7.2.2 (paths and version ranges).
- :mod:`.errors`: the Web API's error codes and what they mean.

Read from shared/facts/dsm-ui-7.2.2.md and dsm-webapi.md. The build (params validation, Web API
errors, wizard) and the simulator (its guest renders and enforces these) import this package;
nothing here imports either of them.

Standard library only, and only relative imports inside the package: the simulator's guest runs
the same files in a Python without ``vdsmlib`` (see ``facts.py`` of the simulated guest).
"""

__all__: list[str] = []
