// glibc malloc settings for a process that serves requests (`npm start`, and the stacks the tests start the
// same way). glibc reads them once, when the process starts, so they travel in its environment.
//
// By default glibc raises its mmap threshold to the size of each mmap'd block freed (up to 32 MiB) and its
// trim threshold to twice that: after the first large image or tensor has come and gone, the trim threshold is
// 64 MiB, the size of a whole heap of a thread's arena, so no thread's arena gives freed memory back. Every
// thread that decoded an image or ran a pass (libuv's pool for sharp, the ONNX Runtime thread with its
// arena-less large passes) kept it: test/hostile-memory.test.ts's stack ended 207-318 MiB above its baseline,
// and malloc_trim(0) gave all of it back. Fixed thresholds turn that off:
// - mmap 4 MiB: an ordinary request's buffers (a 1024² RGB image is 3 MiB) stay in the arenas, a large pass's
//   tensors (8 MiB and up) are mapped and unmapped with the pass;
// - trim 64 MiB (the most the dynamic rule ever sets): what stays in the arenas is reused by the next request
//   instead of being given back and mapped again; at 128 KiB (glibc's default) arenas shrank and grew on every
//   request and 256² requests took 1.45× as long, at 8 MiB still 1.1-1.3× (24 sequential 256² translates,
//   alternated with glibc's defaults); at 64 MiB level with the defaults, and the hostile-memory stack still
//   ends 97 (Node 20) and 135 MiB (Node 22) above its baseline, against 207-437 without these settings;
// - hugetlb=1: mapped blocks get transparent huge pages (where the kernel offers them on request, "madvise"),
//   so mapping a tensor afresh each pass costs few page faults: without it large passes ran 2-3× slower.
// Numbers in docs/performance.md, Memory. Not for the Lambda: its glibc (2.34) has no hugetlb tunable.
export const MALLOC_ENV = {
  GLIBC_TUNABLES: ["mmap_threshold=4194304", "trim_threshold=67108864", "hugetlb=1"].map((t) => `glibc.malloc.${t}`).join(":"),
};
