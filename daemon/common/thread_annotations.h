// Clang's thread-safety annotations (-Wthread-safety), as LevelDB uses them:
// members say which mutex guards them, functions which mutex they need or must
// not hold, and the compiler checks every access. Other compilers ignore them.
#pragma once

#if defined(__clang__)
#define SIOBRIDGE_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define SIOBRIDGE_THREAD_ANNOTATION(x)
#endif

#define SIOBRIDGE_CAPABILITY(x) SIOBRIDGE_THREAD_ANNOTATION(capability(x))
#define SIOBRIDGE_SCOPED_CAPABILITY SIOBRIDGE_THREAD_ANNOTATION(scoped_lockable)
#define SIOBRIDGE_GUARDED_BY(x) SIOBRIDGE_THREAD_ANNOTATION(guarded_by(x))
#define SIOBRIDGE_PT_GUARDED_BY(x) SIOBRIDGE_THREAD_ANNOTATION(pt_guarded_by(x))
#define SIOBRIDGE_ACQUIRE(...) SIOBRIDGE_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define SIOBRIDGE_RELEASE(...) SIOBRIDGE_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
#define SIOBRIDGE_REQUIRES(...) SIOBRIDGE_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
#define SIOBRIDGE_EXCLUDES(...) SIOBRIDGE_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))
#define SIOBRIDGE_ASSERT_CAPABILITY(x) SIOBRIDGE_THREAD_ANNOTATION(assert_capability(x))
#define SIOBRIDGE_NO_THREAD_SAFETY_ANALYSIS SIOBRIDGE_THREAD_ANNOTATION(no_thread_safety_analysis)
