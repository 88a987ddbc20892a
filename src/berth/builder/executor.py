"""One build: stages in order, one image per step, the cache consulted before every step.

Flow of `Build.run`:

    context tar ─► ContextTree (indexed, never unpacked) ─► Dockerfile ─► plan ─► stages needed
    per stage:   FROM (image | earlier stage | scratch) [+ ONBUILD triggers of the base]
    per step:    key = (parent id, instruction, source checksum, build args in scope)
                 cache hit  -> adopt that image, no container, no layer
                 metadata   -> new config + history entry (empty_layer), same layers
                 COPY/ADD   -> layer tar written from the source tree
                 WORKDIR    -> a layer only when the directory is new
                 RUN        -> container on an overlay; the upper dir diffed into a layer
    end:         tags, `aux.ID`, "Successfully built/tagged"

Messages go out through `emit` as the JSON objects of the /build stream.
"""

from __future__ import annotations

import asyncio
import json
import posixpath
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from berth.builder import imageconfig as ic
from berth.builder import metadata
from berth.builder._errors import DockerfileError, StepFailed
from berth.builder.cache import BuildCache, step_key
from berth.builder.context import prepare_context
from berth.builder.copier import CopyOptions, Source, checksum, chown_ids, copy_into_layer, find_sources
from berth.builder.dockerfile import MAX_DOCKERFILE_BYTES, Instruction, parse, parse_words
from berth.builder.dockerignore import DockerIgnore, removed_by_daemon
from berth.builder.instructions import Plan, Stage, check, needed_stages, plan, target_stage
from berth.builder.layertar import LayerWriter, diff_upper
from berth.builder.runner import ContainerRunner, RunRequest
from berth.builder.shellwords import ShellLex
from berth.builder.trees import ContextTree, HeredocTree, MergedView, Tree, clean_source, resolve
from berth.errors import BerthError, InvalidArgument, NotFound
from berth.images import Image
from berth.types import parse_reference
from berth.types.scopedpath import split_path

Emit = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass(frozen=True)
class BuildOptions:
    """`POST /build` parameters (docker-engine-api.md §3.3), already decoded."""

    dockerfile: str = "Dockerfile"
    tags: tuple[str, ...] = ()
    build_args: Mapping[str, str | None] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    target: str = ""
    no_cache: bool = False
    pull: bool = False
    cache_from: tuple[str, ...] = ()
    quiet: bool = False
    network_mode: str = ""           # "" / "default" / "bridge" -> bridge; "none"; "host"
    platform: str = ""
    extra_hosts: tuple[tuple[str, str], ...] = ()   # `--add-host name:ip` for RUN's /etc/hosts


PullBase = Callable[[str, Callable[[dict[str, Any]], None]], None]
"""Pulls a base image by reference (blocking), reporting Docker JSON progress messages."""


class ImagesLike(Protocol):
    """What a build needs from the image store (berth.images.ImageStore)."""

    def resolve(self, name: str) -> Image: ...
    def layer_dirs(self, image: Image) -> list[Path]: ...
    def add_image(self, config: dict[str, Any], layer_tars: list[Path], reference: str | None, *,
                  parent: str = "", base_layers: Sequence[str] = ()) -> Image: ...
    def tag(self, source: str, target_ref: str) -> None: ...


@dataclass
class StageState:
    """Where a stage is: its current image (id, config, layers) and the ARGs in scope."""

    image_id: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    diff_ids: list[str] = field(default_factory=list)
    args: dict[str, str | None] = field(default_factory=dict)
    cmd_set: bool = False
    steps: int = 0

    @property
    def c(self) -> dict[str, Any]:
        return self.config.get("config") or {}


class Build:
    def __init__(self, *, images: ImagesLike, cache: BuildCache, runner: ContainerRunner, work: Path,
                 options: BuildOptions, emit: Emit, architecture: str, pull_base: PullBase | None = None) -> None:
        self.images = images
        self.pull_base = pull_base
        self.cache = cache
        self.runner = runner
        self.work = work
        self.opts = options
        self._emit = emit
        self.arch = architecture
        self.filename = posixpath.basename(options.dockerfile) or "Dockerfile"
        self.lex = ShellLex()
        self.context: ContextTree | None = None
        self.plan: Plan | None = None
        self.results: dict[int, StageState] = {}
        self.meta: dict[str, str | None] = {}
        self.used_args: set[str] = set()
        self.step_no = 0
        self.total = 0
        self.cache_allowed: set[str] | None = None
        self._seq = 0
        self._building: set[int] = set()

    # -- output ---------------------------------------------------------------------------------

    async def say(self, text: str) -> None:
        if not self.opts.quiet:
            await self._emit({"stream": text})

    # -- top level ------------------------------------------------------------------------------

    async def run(self, raw_context: Path) -> str:
        """Build; returns the final image id. Raises BerthError (DockerfileError, StepFailed...)."""
        p = await asyncio.to_thread(self._load, raw_context)
        target = target_stage(p, self.opts.target, self.filename)
        if self.opts.labels:  # moby adds them as a LABEL step at the end of the target stage
            p = _with_labels(p, self.opts.labels, target.index)
            target = p.stages[target.index]
        self.plan = p
        stages = needed_stages(p, target)
        self.total = sum(1 + len(s.commands) for s in stages)
        self.meta = self._meta_args(p.meta_args)
        self.cache_allowed = await asyncio.to_thread(self._cache_from_ids)
        for stage in stages:
            self.results[stage.index] = await self._build_stage(stage)
        final = self.results[target.index]
        if not final.image_id:
            raise InvalidArgument("No image was generated. Is your Dockerfile empty?")
        await self._finish(final.image_id)
        return final.image_id

    def _load(self, raw_context: Path) -> Plan:
        tar = prepare_context(raw_context, self.work / "context.tar")
        self.context = ContextTree(tar)
        name, data = self._read_dockerfile(self.context)
        # The client applied .dockerignore; dockerd only drops it and the Dockerfile (when listed).
        ignore = self.context.read(".dockerignore", 1 << 20)
        text = None if ignore is None else ignore.decode("utf-8", errors="replace")
        self.context.ignore = DockerIgnore.hiding(removed_by_daemon(text, name))
        dockerfile = parse(data, self.filename)
        self.lex = ShellLex(dockerfile.escape)
        return plan(dockerfile, self.filename)

    def _read_dockerfile(self, context: ContextTree) -> tuple[str, bytes]:
        """(name, bytes) of the Dockerfile; symlinks inside the context are followed and a
        missing `Dockerfile` falls back to `dockerfile`, as dockerd's remotecontext does."""
        name = self.opts.dockerfile or "Dockerfile"
        candidates = [name, name.lower()] if name == "Dockerfile" else [name]
        for candidate in candidates:
            data = context.read("/".join(resolve(context, candidate)), MAX_DOCKERFILE_BYTES)
            if data is not None:
                if not data:
                    raise InvalidArgument(f"the Dockerfile ({candidate}) cannot be empty")
                return candidate, data
        raise InvalidArgument(f"Cannot locate specified Dockerfile: {name}")

    def _meta_args(self, instructions: tuple[Instruction, ...]) -> dict[str, str | None]:
        values: dict[str, str | None] = {}
        for instruction in instructions:
            for name, default in self._arg_words(instruction, values):
                values[name] = self._arg_value(name, default, values)
        return values

    def _cache_from_ids(self) -> set[str] | None:
        if not self.opts.cache_from:
            return None
        allowed: set[str] = set()
        for name in self.opts.cache_from:
            try:
                image: Image | None = self.images.resolve(name)
            except NotFound:
                continue
            while image is not None and image.id not in allowed:
                allowed.add(image.id)
                image = self._image_or_none(image.parent) if image.parent else None
        return allowed

    async def _finish(self, image_id: str) -> None:
        for tag in self.opts.tags:
            await asyncio.to_thread(self.images.tag, image_id, tag)
        unused = sorted(set(self.opts.build_args) - self.used_args)
        if unused:
            await self.say(f"[Warning] One or more build-args [{' '.join(unused)}] were not consumed\n")
        await self._emit({"aux": {"ID": image_id}})
        if self.opts.quiet:
            await self._emit({"stream": image_id + "\n"})
            return
        await self.say(f"Successfully built {image_id.removeprefix('sha256:')[:12]}\n")
        for tag in self.opts.tags:
            await self.say(f"Successfully tagged {_familiar(tag)}\n")

    # -- stages ---------------------------------------------------------------------------------

    async def _build_stage(self, stage: Stage) -> StageState:
        self._building.add(stage.index)
        state = await self._from(stage)
        for instruction in stage.commands:
            await self._step(state, instruction)
        return state

    async def _from(self, stage: Stage) -> StageState:
        await self._announce(stage.from_)
        env = {k: v for k, v in self.meta.items() if v is not None}
        base = self._expand_word(stage.from_, stage.base, env)
        state = await self._base_state(stage, base)
        state.args = {}
        await self.say(f" ---> {_short(state.image_id) if state.image_id else 'scratch'}\n")
        triggers = list(state.c.get("OnBuild") or [])
        if triggers:
            await self._run_triggers(state, triggers)
        return state

    async def _base_state(self, stage: Stage, base: str) -> StageState:
        assert self.plan is not None
        ref = self.plan.stage(base)
        if ref is not None and ref.index < stage.index:
            if ref.index not in self.results:
                self.results[ref.index] = await self._build_stage(ref)
            built = self.results[ref.index]
            return StageState(image_id=built.image_id, config=dict(built.config), diff_ids=list(built.diff_ids))
        if base.lower() == "scratch":
            return StageState(config=ic.start_config(None, self.arch))
        try:
            image = await self._resolve_or_pull(base)
        except NotFound as err:
            raise self._error(stage.from_, str(err)) from err
        return StageState(image_id=image.id, config=ic.start_config(image.config, self.arch),
                          diff_ids=list(image.layers))

    async def _resolve_or_pull(self, base: str) -> Image:
        """The base image, pulled first when it is missing locally (or when --pull asks)."""
        if not self.opts.pull:
            try:
                return await asyncio.to_thread(self.images.resolve, base)
            except NotFound:
                if self.pull_base is None:
                    raise
        if self.pull_base is not None:
            messages: list[dict[str, Any]] = []
            await asyncio.to_thread(self.pull_base, base, messages.append)
            if not self.opts.quiet:  # byte-level progress stays out of the build log
                for message in messages:
                    if not (message.get("progressDetail") or {}).get("total"):
                        await self._emit({k: v for k, v in message.items() if k in ("status", "id")})
        return await asyncio.to_thread(self.images.resolve, base)

    async def _run_triggers(self, state: StageState, triggers: list[str]) -> None:
        await self.say(f"# Executing {len(triggers)} build trigger{'s' if len(triggers) > 1 else ''}\n")
        state.config = {**state.config, "config": {**state.c, "OnBuild": None}}
        for text in triggers:
            for instruction in parse(text, self.filename).instructions:
                check(instruction, self.filename, self.lex.escape)
                await self._dispatch(state, instruction)

    # -- steps ----------------------------------------------------------------------------------

    async def _announce(self, instruction: Instruction) -> None:
        self.step_no += 1
        await self.say(f"Step {self.step_no}/{self.total} : {instruction.original}\n")

    async def _step(self, state: StageState, instruction: Instruction) -> None:
        await self._announce(instruction)
        await self._dispatch(state, instruction)
        await self.say(f" ---> {_short(state.image_id)}\n")

    async def _dispatch(self, state: StageState, instruction: Instruction) -> None:
        try:
            if instruction.keyword in metadata.METADATA_KEYWORDS:
                await self._metadata(state, instruction)
            else:
                await _STEPS[instruction.keyword](self, state, instruction)
        except (DockerfileError, StepFailed):
            raise
        except BerthError as err:
            if isinstance(err, NotFound):
                raise
            raise self._error(instruction, str(err)) from err

    def _error(self, instruction: Instruction, message: str) -> DockerfileError:
        return DockerfileError(self.filename, instruction.line, message)

    def vars(self, state: StageState) -> dict[str, str]:
        """What `$VAR` sees: ARGs in scope with a value, overridden by ENV."""
        out = {k: v for k, v in state.args.items() if v is not None}
        out.update(ic.env_map(state.c))
        return out

    def _expander(self, state: StageState) -> metadata.Expander:
        return metadata.Expander(self.lex, self.vars(state))

    def _expand_word(self, instruction: Instruction, text: str, env: Mapping[str, str]) -> str:
        try:
            return self.lex.process_word(text, env)
        except InvalidArgument as err:
            raise self._error(instruction, str(err)) from err

    def args_in_scope(self, state: StageState) -> dict[str, str]:
        return {k: v for k, v in state.args.items() if v is not None}

    # -- cache and commits ----------------------------------------------------------------------

    async def _cached(self, state: StageState, key: str) -> bool:
        if self.opts.no_cache:
            return False
        image_id = await asyncio.to_thread(self.cache.lookup, key, self._exists, self.cache_allowed)
        if image_id is None:
            return False
        image = await asyncio.to_thread(self.images.resolve, image_id)
        self._adopt(state, image)
        await self.say(" ---> Using cache\n")
        return True

    def _exists(self, image_id: str) -> bool:
        return self._image_or_none(image_id) is not None

    def _image_or_none(self, image_id: str) -> Image | None:
        try:
            return self.images.resolve(image_id)
        except NotFound:
            return None

    @staticmethod
    def _adopt(state: StageState, image: Image) -> None:
        state.image_id = image.id
        state.config = {k: v for k, v in image.config.items() if k != "rootfs"}
        state.diff_ids = list(image.layers)
        state.steps += 1

    async def commit(self, state: StageState, key: str, created_by: str, layer: Path | None,
                     config_sub: dict[str, Any] | None = None, author: str | None = None) -> None:
        """Create the step's image (one layer or none) and remember it under `key`."""
        config = dict(state.config)
        if config_sub is not None:
            config["config"] = config_sub
        if author is not None:
            config["author"] = author
        config = ic.with_history(config, created_by, empty_layer=layer is None, created=_now())
        config.pop("rootfs", None)
        tars = [layer] if layer is not None else []
        image = await asyncio.to_thread(self.images.add_image, config, tars, None, parent=state.image_id,
                                        base_layers=list(state.diff_ids))
        await asyncio.to_thread(self.cache.store, key, image.id)
        self._adopt(state, image)

    def step_dir(self) -> Path:
        self._seq += 1
        path = self.work / f"step-{self._seq}"
        path.mkdir()
        return path

    # -- metadata instructions --------------------------------------------------------------------

    async def _metadata(self, state: StageState, instruction: Instruction) -> None:
        result = metadata.apply(instruction, state.c, self._expander(state), cmd_set=state.cmd_set)
        state.cmd_set = result.cmd_set
        key = step_key(state.image_id, instruction.original, "", self.args_in_scope(state))
        if await self._cached(state, key):
            return
        shell = metadata.shell_of(state.c)
        await self.commit(state, key, ic.nop(result.history, shell), None, result.config, result.author)

    # -- ARG --------------------------------------------------------------------------------------

    def _arg_words(self, instruction: Instruction, env: Mapping[str, str | None]) -> list[tuple[str, str | None]]:
        known = {k: v for k, v in env.items() if v is not None}
        out = []
        for word in parse_words(instruction.args, self.lex.escape):
            name, sep, default = word.partition("=")
            out.append((name, self._expand_word(instruction, default, known) if sep else None))
        return out

    def _arg_value(self, name: str, default: str | None, meta: Mapping[str, str | None]) -> str | None:
        if name in self.opts.build_args:
            self.used_args.add(name)
            given = self.opts.build_args[name]
            if given is not None:
                return given
        if default is not None:
            return default
        return meta.get(name)

    async def _arg(self, state: StageState, instruction: Instruction) -> None:
        for name, default in self._arg_words(instruction, self.vars(state)):
            state.args[name] = self._arg_value(name, default, self.meta)
        key = step_key(state.image_id, instruction.original, "", self.args_in_scope(state))
        if await self._cached(state, key):
            return
        await self.commit(state, key, ic.nop(f"ARG {instruction.args}", metadata.shell_of(state.c)), None)

    # -- WORKDIR ----------------------------------------------------------------------------------

    async def _workdir(self, state: StageState, instruction: Instruction) -> None:
        path = metadata.workdir(state.c.get("WorkingDir") or "/", instruction.args, self._expander(state))
        config_sub = ic.set_key(state.c, "WorkingDir", path)
        key = step_key(state.image_id, instruction.original, path, self.args_in_scope(state))
        if await self._cached(state, key):
            return
        layer = await asyncio.to_thread(self._workdir_layer, state, path)
        await self.commit(state, key, ic.nop(f"WORKDIR {path}", metadata.shell_of(state.c)), layer, config_sub)

    def _workdir_layer(self, state: StageState, path: str) -> Path | None:
        view = self.view(state)
        existing = view.entry(resolve(view, path))
        if existing is not None and existing.kind == "dir":
            return None
        out = self.step_dir() / "layer.tar"
        with LayerWriter(out) as writer:
            copy_into_layer(writer, view, [], path.rstrip("/") + "/", CopyOptions())
        return out

    def view(self, state: StageState) -> MergedView:
        if not state.image_id:
            return MergedView([])
        return MergedView(self.images.layer_dirs(self.images.resolve(state.image_id)))

    # -- COPY / ADD -------------------------------------------------------------------------------

    async def _copy(self, state: StageState, instruction: Instruction) -> None:
        await self._ensure_source_stage(state, instruction)
        step = await asyncio.to_thread(self._prepare_copy, state, instruction)
        key = step_key(state.image_id, instruction.original, step.checksum, self.args_in_scope(state))
        if await self._cached(state, key):
            return
        layer = await asyncio.to_thread(self._write_copy, state, step)
        kind = "dir" if any(s.entry.kind == "dir" for s in step.sources) else "file"
        if len(step.sources) > 1:
            kind = "multi"
        created_by = " ".join([*metadata.shell_of(state.c),
                               f"#(nop) {instruction.keyword} {kind}:{step.checksum} in {step.dest} "])
        await self.commit(state, key, created_by, layer)

    async def _ensure_source_stage(self, state: StageState, instruction: Instruction) -> None:
        """`COPY --from=$STAGE` names a stage only known after expansion: build it now."""
        ref = instruction.flag("from")
        assert self.plan is not None
        stage = self.plan.stage(self._expander(state).word(ref)) if ref else None
        if stage is not None and stage.index not in self.results:
            if stage.index in self._building:
                raise self._error(instruction, f"circular dependency detected on stage: {ref}")
            self.results[stage.index] = await self._build_stage(stage)

    def _prepare_copy(self, state: StageState, instruction: Instruction) -> _CopyStep:
        ex = self._expander(state)
        words = list(instruction.json_args) if instruction.json_args is not None else instruction.args.split()
        dest = ex.word(words[-1])
        if not dest.startswith("/"):
            base = state.c.get("WorkingDir") or "/"
            dest = posixpath.join(base, dest) + ("/" if dest.endswith("/") or dest in (".", "./") else "")
        tree, tree_id = self._source_tree(instruction, ex)
        heredocs = {h.name: h for h in instruction.heredocs}
        sources: list[Source] = []
        for word in words[:-1]:
            sources += self._sources_for(instruction, tree, word, heredocs, ex)
        if not sources:
            raise self._error(instruction, f"{instruction.keyword} failed: no source files were specified")
        digest = checksum(sources) if tree_id is None else step_key(tree_id, " ".join(words[:-1]))
        opts = self._copy_options(state, instruction)
        return _CopyStep(sources=sources, dest=dest, checksum=digest + f":{opts.uid}:{opts.gid}:{opts.chmod}",
                         options=opts)

    def _sources_for(self, instruction: Instruction, tree: Tree, word: str, heredocs: dict[str, Any],
                     ex: metadata.Expander) -> list[Source]:
        name = word.lstrip("<").lstrip("-").strip("'\"")
        if word.startswith("<<") and name in heredocs:
            doc = heredocs[name]
            text = self.lex.expand_vars(doc.content, ex.vars) if doc.expand else doc.content
            heredoc_tree = HeredocTree({name: text.encode()}, int(time.time()))
            return [Source(heredoc_tree, [name], heredoc_tree.entry([name]))]  # type: ignore[arg-type]
        path = ex.word(word)
        if instruction.keyword == "ADD" and path.startswith(("http://", "https://", "git@")):
            raise InvalidArgument("ADD from a URL is not supported by berth's builder: "
                                  "download it in the context or with RUN")
        if isinstance(tree, ContextTree):
            path = clean_source(path)
        return find_sources(tree, path, f"{instruction.keyword}")

    def _source_tree(self, instruction: Instruction, ex: metadata.Expander) -> tuple[Tree, str | None]:
        ref = instruction.flag("from")
        if not ref:
            assert self.context is not None
            return self.context, None
        ref = ex.word(ref)
        assert self.plan is not None
        stage = self.plan.stage(ref)
        if stage is not None and stage.index in self.results:
            image_id = self.results[stage.index].image_id
        else:
            image_id = self.images.resolve(ref).id
        image = self.images.resolve(image_id) if image_id else None
        dirs = self.images.layer_dirs(image) if image is not None else []
        return MergedView(dirs), image_id or "scratch"

    def _copy_options(self, state: StageState, instruction: Instruction) -> CopyOptions:
        ex = self._expander(state)
        chown, chmod = instruction.flag("chown"), instruction.flag("chmod")
        uid = gid = 0
        if chown:
            uid, gid = chown_ids(ex.word(chown), self.view(state))
        mode = None
        if chmod:
            try:
                mode = int(ex.word(chmod), 8)
            except ValueError as err:
                raise InvalidArgument(f"invalid chmod parameter: {chmod}") from err
        return CopyOptions(uid=uid, gid=gid, chmod=mode, extract_archives=instruction.keyword == "ADD")

    def _write_copy(self, state: StageState, step: _CopyStep) -> Path:
        out = self.step_dir() / "layer.tar"
        with LayerWriter(out) as writer:
            copy_into_layer(writer, self.view(state), step.sources, step.dest, step.options)
        return out

    # -- RUN --------------------------------------------------------------------------------------

    async def _run(self, state: StageState, instruction: Instruction) -> None:
        args = self._run_args(state, instruction)
        build_args = self.args_in_scope(state)
        env_keys = set(ic.env_map(state.c))
        extra = {k: v for k, v in sorted(build_args.items()) if k not in env_keys}
        self.used_args.update(k for k in build_args if k in self.opts.build_args)
        prefix = f"|{len(extra)} " + " ".join(f"{k}={v}" for k, v in extra.items()) + " " if extra else ""
        created_by = prefix + " ".join(args)
        key = step_key(state.image_id, created_by, "", build_args)
        if await self._cached(state, key):
            return
        request = RunRequest(
            args=tuple(args), env=tuple(list(state.c.get("Env") or []) + [f"{k}={v}" for k, v in extra.items()]),
            user=state.c.get("User") or "", cwd=state.c.get("WorkingDir") or "/",
            network=self._network(instruction), extra_hosts=self.opts.extra_hosts)
        layer = await self._run_container(state, request, " ".join(args))
        await self.commit(state, key, created_by, layer)

    def _run_args(self, state: StageState, instruction: Instruction) -> list[str]:
        if instruction.json_args is not None and not instruction.heredocs:
            return list(instruction.json_args)
        shell = metadata.shell_of(state.c)
        docs = instruction.heredocs
        if len(docs) == 1 and instruction.args.strip().lstrip("<").lstrip("-").strip("'\"") == docs[0].name:
            return shell + [docs[0].content]  # `RUN <<EOF`: the heredoc is the script
        script = instruction.args + "".join("\n" + d.content + d.name for d in docs)
        return shell + [script]

    def _network(self, instruction: Instruction) -> str:
        mode = instruction.flag("network") or self.opts.network_mode or "default"
        return {"default": "bridge", "": "bridge"}.get(mode, mode)

    async def _run_container(self, state: StageState, request: RunRequest, command: str) -> Path | None:
        container_id = self.runner.new_id()
        step_dir = self.step_dir()
        image = await asyncio.to_thread(self.images.resolve, state.image_id) if state.image_id else None
        layers = await asyncio.to_thread(self.images.layer_dirs, image) if image is not None else []
        await self.say(f" ---> Running in {container_id[:12]}\n")
        code = await self.runner.run(container_id, request, layers, step_dir, self._output)
        await self.say(f" ---> Removed intermediate container {container_id[:12]}\n")
        if code != 0:
            raise StepFailed(command, code)
        view = MergedView(layers)
        out = step_dir / "layer.tar"
        entries = await asyncio.to_thread(diff_upper, step_dir / "upper", out,
                                          lambda rel: view.entry(split_path(rel)))
        return out if entries else None

    async def _output(self, stream: int, data: bytes) -> None:
        text = data.decode("utf-8", errors="replace")
        # dockerd's StderrFormatter paints a RUN command's stderr red in the same `stream` key
        await self.say(f"\033[91m{text}\033[0m" if stream == 2 else text)


@dataclass(frozen=True)
class _CopyStep:
    sources: list[Source]
    dest: str
    checksum: str
    options: CopyOptions


_STEPS: dict[str, Callable[[Build, StageState, Instruction], Awaitable[None]]] = {
    "RUN": Build._run, "COPY": Build._copy, "ADD": Build._copy, "WORKDIR": Build._workdir,
    "ARG": Build._arg,
}


def _with_labels(p: Plan, labels: Mapping[str, str], index: int) -> Plan:
    """`--label k=v` becomes a LABEL step at the end of stage `index` (the target)."""
    text = "LABEL " + " ".join(f"{json.dumps(k)}={json.dumps(v)}" for k, v in sorted(labels.items()))
    stage = p.stages[index]
    last_line = stage.commands[-1].end_line if stage.commands else stage.from_.end_line
    extra = Instruction(keyword="LABEL", args=text[len("LABEL "):], original=text, line=last_line, end_line=last_line)
    stages = list(p.stages)
    stages[index] = replace(stage, commands=stage.commands + (extra,))
    return replace(p, stages=tuple(stages))


def _short(image_id: str) -> str:
    return image_id.removeprefix("sha256:")[:12]


def _familiar(tag: str) -> str:
    try:
        return parse_reference(tag).familiar()
    except InvalidArgument:
        return tag


def _now() -> str:
    ns = time.time_ns()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 1_000_000_000)) + f".{ns % 1_000_000_000:09d}Z"
