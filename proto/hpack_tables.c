/* placeholder: being written */
typedef int spindle_placeholder_hpack_tables;
