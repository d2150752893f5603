/* tally - util: what several modules need and no module owns. */
#ifndef TALLY_UTIL_H
#define TALLY_UTIL_H

#include <stddef.h>

/* The struct of the given type whose member ptr points to. The compiler
 * checks that ptr points to the member's type. */
#define container_of(ptr, type, member)					\
	((type *)(void *)((char *)(1 ? (ptr) : &((type *)NULL)->member) -	\
	    offsetof(type, member)))

/* A macro's value as a string literal: STR(REQUEST_HEADERS_MAX) is "100". */
#define STR(x)		STR_(x)
#define STR_(x)		#x

#endif
