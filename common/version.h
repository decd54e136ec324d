/* The version every part of pystrobe reports. */
#ifndef PYSTROBE_VERSION_H
#define PYSTROBE_VERSION_H

#define PYSTROBE_VERSION "0.1.0"

#endif
