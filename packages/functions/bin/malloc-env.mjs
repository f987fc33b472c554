// glibc malloc settings for a process that serves requests (`npm start`, and the stacks the tests start the
// same way). glibc reads them once, when the process starts, so they travel in its environment.
//
// By default glibc raises its mmap threshold to the size of each mmap'd block freed (up to 32 MiB) and its
// trim threshold to twice that: after the first large image or tensor has come and gone, the trim threshold is
// 64 MiB, the size of a whole heap of a thread's arena, so no thread's arena gives freed memory back. Every
// thread that decoded an image or ran a pass (libuv's pool for sharp, the ONNX Runtime thread with its
// arena-less large passes) kept it: test/hostile-memory.test.ts's stack ended 207-318 MiB above its baseline,
// and malloc_trim(0) gave all of it back. A fixed threshold (128 KiB, glibc's default) turns that off: blocks
// above it are mmap'd and unmapped when freed. hugetlb=1 has those blocks backed by transparent huge pages
// (where the kernel offers them on request, "madvise"), so mapping a large tensor afresh each pass costs few
// page faults: without it the arena-less 1024² passes ran 2-3× slower, with it faster than before. Both numbers
// in docs/performance.md, Memory. Not for the Lambda: its glibc (2.34) has no hugetlb tunable.
export const MALLOC_ENV = { GLIBC_TUNABLES: "glibc.malloc.mmap_threshold=131072:glibc.malloc.hugetlb=1" };
