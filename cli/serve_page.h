/* serve_page.h — the web page of `clipadapt serve` (serve_page.c). */
#ifndef CA_SERVE_PAGE_H
#define CA_SERVE_PAGE_H
extern const char SERVE_PAGE_HTML[];
#endif
