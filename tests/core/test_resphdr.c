/* test_resphdr.c - the date header's format (RFC 9110 IMF-fixdate). */
#include <criterion/criterion.h>
#include <string.h>

#include "resphdr.h"

Test(resphdr, formats_imf_fixdate)
{
    char d[32];
    resphdr_format_date(0, d);
    cr_assert_str_eq(d, "Thu, 01 Jan 1970 00:00:00 GMT");
    resphdr_format_date(784111777, d); /* RFC 9110's example */
    cr_assert_str_eq(d, "Sun, 06 Nov 1994 08:49:37 GMT");
    resphdr_format_date(4102444799, d); /* last second of 2099 */
    cr_assert_str_eq(d, "Thu, 31 Dec 2099 23:59:59 GMT");
    cr_assert_eq(strlen(d), 29);
}
