"""The `berth` command: the daemon, and docker-like client verbs over the Docker Engine API.

    main.py        parser assembly and dispatch; failures -> docker's messages and exit codes
    verbs.py       Verb: one subcommand's name, help, flags and handler (shared by `berth image X`)
    client.py      finding the daemon (-H, DOCKER_HOST, default socket) and request helpers
    run.py         run / exec: create (pull on 404), attach, wait, start, exit status
    containers.py  ps, logs, start, stop, restart, kill, rm
    images.py      images, pull, push, tag, rmi, load, save, import, image bootstrap
    system.py      version, info, inspect
    stream.py      hijacked connections, stdcopy demux, raw terminal, detach keys
    pure helpers   table, render, humanize, units, ports, envfile, options, progress, template,
                   runconfig (run flags -> create body), failures, parser
    daemon_cmd.py  `berth daemon` (registered when present)

Client verbs talk to the daemon only over HTTP; handlers are `handler(api, args) -> exit code`.
"""
