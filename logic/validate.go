package logic

import (
	"fmt"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"
)

// validText checks that s is valid UTF-8 free of control characters, which
// would forge lines in logs and terminals; name says which field in the
// error.
func validText(name, s string) error {
	if !utf8.ValidString(s) {
		return fmt.Errorf("%w: %s is not valid UTF-8", ErrBadRequest, name)
	}
	if strings.IndexFunc(s, unicode.IsControl) >= 0 {
		return fmt.Errorf("%w: %s has control characters", ErrBadRequest, name)
	}
	return nil
}

// validDeviceID checks a device id as a login names it; empty means the
// default (or the token's) device.
func validDeviceID(device string) error {
	if len(device) > maxDeviceID {
		return fmt.Errorf("%w: device_id over %d bytes", ErrTooLarge, maxDeviceID)
	}
	return validText("device_id", device)
}

// validPlatform checks LoginReq.platform, which is stored with the device.
func validPlatform(platform string) error {
	if len(platform) > maxPlatform {
		return fmt.Errorf("%w: platform over %d bytes", ErrTooLarge, maxPlatform)
	}
	return validText("platform", platform)
}

// validNickname checks a nickname; empty clears it.
func validNickname(nick string) error {
	if len(nick) > maxNickBytes || utf8.RuneCountInString(nick) > maxNickRunes {
		return fmt.Errorf("%w: nickname over %d characters", ErrTooLarge, maxNickRunes)
	}
	if err := validText("nickname", nick); err != nil {
		return err
	}
	if nick != strings.TrimSpace(nick) {
		return fmt.Errorf("%w: nickname has leading or trailing space", ErrBadRequest)
	}
	return nil
}

// validAvatarURL checks an avatar URL: absolute http or https with a host,
// printable ASCII (internationalised hosts go punycoded), no credentials.
// Empty clears it.
func validAvatarURL(raw string) error {
	if raw == "" {
		return nil
	}
	if len(raw) > maxAvatarURL {
		return fmt.Errorf("%w: avatar_url over %d bytes", ErrTooLarge, maxAvatarURL)
	}
	for i := 0; i < len(raw); i++ {
		if raw[i] <= ' ' || raw[i] >= 0x7f {
			return fmt.Errorf("%w: avatar_url must be printable ASCII", ErrBadRequest)
		}
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "https" && u.Scheme != "http" || u.Host == "" ||
		u.User != nil || u.Opaque != "" {
		return fmt.Errorf("%w: avatar_url must be an http or https URL", ErrBadRequest)
	}
	return nil
}

// validNewPassword adds, for a password being set, rules that an existing
// password is not held to at login: not the username, not one repeated
// character.
func validNewPassword(username, password string) error {
	if len(password) < minPassword || len(password) > maxPassword {
		return fmt.Errorf("%w: password must be %d-%d bytes",
			ErrBadRequest, minPassword, maxPassword)
	}
	if strings.EqualFold(password, username) {
		return fmt.Errorf("%w: password must differ from the username", ErrBadRequest)
	}
	if strings.Count(password, password[:1]) == len(password) {
		return fmt.Errorf("%w: password must not repeat one character", ErrBadRequest)
	}
	return nil
}
