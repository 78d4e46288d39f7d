/* placeholder: being written */
typedef int spindle_placeholder_h2_conn;
