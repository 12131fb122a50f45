"""The core's code cache: decoded instructions and translated regions, and when they are dropped.

Per translation context (MSR[PR|IS|DS]) the core keeps decoded instructions by EA, the superblocks
collected from them, the regions compiled from those (:mod:`emulator.translate`) and the data page
caches; a code index (PA word -> what was built from it) drops exactly what a store, a debugger write,
an ``icbi`` or a soft breakpoint's fetch overlay makes stale, and a TLB change drops the code of just
the EA pages it remapped. Code that keeps changing waits longer and longer before it is translated
again.

A room of :class:`emulator.cpu.Cpu` (a mixin: the state it works on is the core's, declared in
:class:`emulator.cpu_types.CoreRoom`). Imports: standard library and the emulator core modules.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from emulator.cpu_types import (
    CONTEXT_BITS,
    PAGE_MASK,
    PAGE_SHIFT,
    PAGE_SIZE,
    U32,
    Collected,
    CoreRoom,
    TranslationContext,
)
from emulator.mmu import Access, ProtectionFault, TlbMiss
from emulator.translate import (
    MAX_BLOCK_INSTRUCTIONS,
    MAX_REGION_BLOCKS,
    MAX_REGION_INSTRUCTIONS,
    NO_BLOCK,
    Block,
    Instruction,
    Superblock,
    branches_back,
    compile_region,
    ends_block,
    exit_targets,
    falls_through,
    loop_through_entry,
    template_for,
)

# Each time code built at an address is invalidated, the misses it takes to translate there again
# double, up to this many doublings: code that keeps changing (a breakpoint gdb inserts and removes at
# every stop) is translated a few times in all rather than once per change.
_RETRANSLATE_BACKOFF = 10


def _pages_within(pages: dict[int, int], spans: list[tuple[int, int]]) -> set[int]:
    """The keys of ``pages`` (EA page numbers) that lie in one of ``spans`` (first page, page count;
    they may overlap), looked up page by page or tested key by key, whichever is fewer."""
    if sum(count for _first, count in spans) <= len(pages):
        return {page for first, count in spans for page in range(first, first + count) if page in pages}
    return {page for page in pages if any(first <= page < first + count for first, count in spans)}


class CodeCache(CoreRoom):
    """The code cache room of the core (see the module docstring)."""

    def _select_context(self) -> None:
        key = self.msr & CONTEXT_BITS
        context = self._contexts.get(key)
        if context is None:
            context = self._contexts[key] = TranslationContext()
        self._decoded = context.decoded
        self._fetch_pages = context.fetch_pages
        self._blocks = context.blocks
        self._read_pages = context.read_pages
        self._write_pages = context.write_pages
        self._code_write_pages = context.code_write_pages
        self._event_at = 0

    def flush_translation_caches(self) -> None:
        """Forget every cached translation and decoded instruction (TLB/PID/debug change)."""
        for context in self._contexts.values():
            context.decoded.clear()
            context.blocks.clear()
            context.superblocks.clear()
            context.fetch_pages.clear()
            context.read_pages.clear()
            context.write_pages.clear()
            context.code_write_pages.clear()
        self._code_index.clear()
        self._code_pages.clear()
        self._entry_misses.clear()
        self._invalidations.clear()
        self._mmu_generation = getattr(self.mmu, "generation", 0)
        self._event_at = 0

    def _flush_data_caches(self) -> None:
        for context in self._contexts.values():
            context.read_pages.clear()
            context.write_pages.clear()
            context.code_write_pages.clear()

    def translation_changed(self) -> None:
        """Called after tlbwe/tlbivax/tlbilx and MMU SPR writes: when the MMU says anything changed,
        drop the code of every EA page that no longer fetches from the physical page it was built
        from (or no longer may be fetched at all), and the data page cache entries of the pages the
        changes can have touched (``mmu.take_changed_spans``: the old and new spans of each entry
        written or invalidated, or everything after a PID or MMUCSR0 write); keep the rest.

        Firmware and kernels write TLB entries while they run (U-Boot and Linux map RAM and devices
        entry by entry; a kernel refills TLB0 and switches PID): forgetting all code at each write
        would send everything back through the decoded path and the translator.
        """
        if getattr(self.mmu, "generation", 0) == self._mmu_generation:
            return
        take_spans = getattr(self.mmu, "take_changed_spans", None)
        spans = None if take_spans is None else take_spans()
        translate = self.mmu.translate
        for key, context in self._contexts.items():
            if spans is None:
                context.read_pages.clear()
                context.write_pages.clear()
                context.code_write_pages.clear()
            else:
                for pages in (context.read_pages, context.write_pages, context.code_write_pages):
                    for page in _pages_within(pages, spans):
                        del pages[page]
            fetch_pages = context.fetch_pages
            stale: dict[int, int] = {}
            for ea_page in (fetch_pages if spans is None else _pages_within(fetch_pages, spans)):
                pa_page = fetch_pages[ea_page]
                try:
                    # The context's key is its MSR[PR|IS|DS]: all that translation looks at.
                    if translate(ea_page << PAGE_SHIFT, Access.FETCH, key) >> PAGE_SHIFT == pa_page:
                        continue
                except (TlbMiss, ProtectionFault):
                    pass
                stale[ea_page] = pa_page
            if stale:
                self._drop_code_pages(context, stale)
        self._mmu_generation = getattr(self.mmu, "generation", 0)
        self._event_at = 0

    def _drop_code_pages(self, context: TranslationContext, stale: dict[int, int]) -> None:
        """Forget the context's code on the EA pages of ``stale`` (EA page -> the PA page it came from),
        and its records in the code index, so stores to those PA pages stop taking the code path."""
        for cache in (context.decoded, context.superblocks, context.blocks):
            for ea in [ea for ea in cache if ea >> PAGE_SHIFT in stale]:
                del cache[ea]
        caches = {id(context.decoded), id(context.superblocks), id(context.blocks)}
        code_index = self._code_index
        for ea_page, pa_page in stale.items():
            del context.fetch_pages[ea_page]
            base = pa_page << PAGE_SHIFT
            for pa in range(base, base + PAGE_SIZE, 4):
                users = code_index.get(pa)
                if users is None:
                    continue
                for tag in [tag for tag, (cache, keys) in users.items()
                            if id(cache) in caches and keys[0] >> PAGE_SHIFT == ea_page]:
                    del users[tag]
                if not users:
                    del code_index[pa]
                    self._uncount_code_word(pa_page)

    def invalidate_physical(self, pa: int, length: int) -> None:
        """Drop decoded instructions overlapping [pa, pa+length) (debugger/DMA writes, icbi)."""
        if not self._code_pages:
            return
        word = pa & ~3
        end = pa + length
        while word < end:
            if (word >> PAGE_SHIFT) in self._code_pages:
                self._invalidate_code_word(word)
            word += 4

    def _register_code(self, pa_words: Iterable[int], cache: dict[int, Any], keys: tuple[int, ...]) -> None:
        """Record that ``cache[key]`` for each of ``keys`` was built from the words ``pa_words``."""
        record = (cache, keys)
        tag = (id(cache), keys[0])
        code_index = self._code_index
        for pa in pa_words:
            users = code_index.get(pa)
            if users is None:
                code_index[pa] = {tag: record}
            else:
                users[tag] = record

    def _invalidate_code_word(self, pa_word: int) -> None:
        users = self._code_index.pop(pa_word, None)
        if users is None:
            return
        misses = self._entry_misses
        invalidations = self._invalidations
        wait = self.translate_after
        for cache, keys in users.values():
            for ea in keys:
                cache.pop(ea, None)
                # Translating costs more than the few instructions code that keeps changing runs
                # between changes: it must run hot again, for twice as long as the last time.
                times = invalidations.get(ea, 0) + 1
                invalidations[ea] = times
                misses[ea] = wait - (wait << min(times, _RETRANSLATE_BACKOFF))
        self._event_at = 0   # a running translated block must not go on with stale code
        self._uncount_code_word(pa_word >> PAGE_SHIFT)

    def _uncount_code_word(self, page: int) -> None:
        """A word of PA ``page`` left the code index: the page holds one code word fewer."""
        remaining = self._code_pages.get(page, 0) - 1
        if remaining <= 0:
            self._code_pages.pop(page, None)
        else:
            self._code_pages[page] = remaining

    def patch_instruction(self, pa: int, word: int) -> None:
        """Fetch-side overlay for a debugger soft breakpoint: only instruction fetch sees ``word``."""
        self._patches[pa & ~3] = word & 0xFFFFFFFF
        self._invalidate_code_word(pa & ~3)

    def unpatch_instruction(self, pa: int) -> None:
        self._patches.pop(pa & ~3, None)
        self._invalidate_code_word(pa & ~3)

    def _translate_block(self, pc: int, compiled_only: bool = False) -> Block | None:
        """Build (and cache) the region starting at ``pc``; NO_BLOCK where only single instructions may run.

        The region is the superblock at ``pc`` plus, breadth first, the superblocks at the constant
        targets its exits reach on the same page (up to MAX_REGION_BLOCKS / MAX_REGION_INSTRUCTIONS).
        ``compiled_only``: None (nothing cached) when its code was not compiled before (in this process
        or in the region store).
        """
        if pc in self._iac_addresses:
            self._blocks[pc] = NO_BLOCK
            return NO_BLOCK
        pa = self.sw_dispatch.get(pc)
        if pa is not None:
            # A soft breakpoint runs on the decoded path and no block holds its word, so gdb removing
            # and inserting it at every stop leaves the code around it translated. Removing it drops
            # this entry with the rest of what was built from the word.
            self._blocks[pc] = NO_BLOCK
            self._register_code((pa & ~3,), self._blocks, (pc,))
            return NO_BLOCK
        first = self._collect_superblock(pc)
        if first is None:
            return NO_BLOCK   # fetch faults here: the decoded path raises it precisely (not cached)
        superblocks: list[Superblock] = [first[:2]]
        targets = [first[3]]
        physical = list(first[2])
        starts = {pc}
        pending = list(first[3])
        instructions = len(first[0])
        while pending and len(superblocks) < MAX_REGION_BLOCKS and instructions < MAX_REGION_INSTRUCTIONS:
            target = pending.pop(0)
            if (target in starts or target & ~PAGE_MASK != pc & ~PAGE_MASK or target in self._iac_addresses
                    or target in self.sw_dispatch):
                continue
            starts.add(target)
            collected = self._collect_superblock(target)
            if collected is None or instructions + len(collected[0]) > MAX_REGION_INSTRUCTIONS:
                continue
            superblocks.append(collected[:2])
            targets.append(collected[3])
            physical += collected[2]
            instructions += len(collected[0])
            pending += collected[3]
        superblocks = loop_through_entry(superblocks, targets)
        context = self._contexts[self.msr & CONTEXT_BITS]
        entries = compile_region(superblocks, self, context.read_pages, context.write_pages,
                                 context.code_write_pages, self._code_index, self._ram,
                                 compiled_only=compiled_only)
        if entries is None:
            return None
        # The region also serves the loop's other superblocks as entry points (where a run resumes
        # after an event or budget exit), so the same loop is not compiled again from each of them.
        blocks = self._blocks
        stored = []
        for entry in entries:
            if entry.start == pc or entry.start not in blocks:
                blocks[entry.start] = entry
                stored.append(entry.start)
        self._register_code(set(physical), blocks, tuple(stored))
        return entries[0]

    def _collect_superblock(self, pc: int) -> Collected | None:
        """The straight run of instructions from ``pc`` (with its templates and physical addresses) up
        to a control transfer, a page boundary, an IAC address, a soft breakpoint or
        MAX_BLOCK_INSTRUCTIONS; None when the fetch at ``pc`` itself would fault or is not RAM."""
        superblocks = self._contexts[self.msr & CONTEXT_BITS].superblocks
        collected = superblocks.get(pc)
        if collected is None:
            collected = self._read_superblock(pc)
            if collected is not None:
                superblocks[pc] = collected
                self._register_code(set(collected[2]), superblocks, (pc,))
        return collected

    def _read_superblock(self, pc: int) -> Collected | None:
        decoded = self._decoded
        msr = self.msr
        model_name = self.model.name
        instructions: list[Instruction] = []
        templates: list[list[str] | None] = []
        physical: list[int] = []
        ea = pc
        while len(instructions) < MAX_BLOCK_INSTRUCTIONS:
            if instructions and (ea & PAGE_MASK == 0 or ea in self._iac_addresses or ea in self.sw_dispatch):
                break
            # Probe first: a fetch fault must not touch MAS/MCSR state until it really happens.
            try:
                pa = self.mmu.translate(ea, Access.FETCH, msr)
            except (TlbMiss, ProtectionFault):
                break
            if pa + 4 > self._ram_size:   # not RAM-backed: cannot be invalidated, so never translated
                break
            entry = decoded.get(ea)
            if entry is None:
                entry = self._fetch_decode(ea)
            word = self._patches.get(pa)
            if word is None:
                word = U32.unpack_from(self._ram, pa)[0]
            instruction = Instruction(ea, word, entry[0], entry[1])
            template = template_for(instruction, model_name)
            instructions.append(instruction)
            templates.append(template)
            physical.append(pa)
            ea = (ea + 4) & 0xFFFFFFFF
            if template is not None and ends_block(template) and (
                    not falls_through(instruction, template) or branches_back(template, pc, ea)):
                break
        if not instructions:
            return None
        return instructions, templates, physical, exit_targets((instructions, templates))
